"""``python -m tests.simulators.nomad agent -dev [flags]``: the simulator as a process.

Flags follow ``nomad agent``: ``-dev``, ``-bind ADDR``, ``-http-port N`` (our
addition; the real agent takes ports from the config), ``-config FILE|DIR`` (agent HCL or
JSON, checked against the keys Nomad accepts: see config.py),
``-data-dir DIR`` (state survives restarts), ``-acl-enabled``, ``-region``,
``-dc``, ``-node``, ``-log-requests FILE`` (JSON lines). ``nomad version`` prints a version.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time

from ..base import SimServer
from . import config as agentconfig
from .server import VERSION, NomadSim


def _first(cfg: dict, block: str) -> dict:
    return (cfg.get(block) or [{}])[0]


def _runner(cfg: dict, data_dir: str | None):
    """A factory for the client runner when the agent is a client with raw_exec enabled, else None."""
    client = _first(cfg, "client")
    plugins = {p["__label__"]: (p.get("config") or [{}])[0] for p in cfg.get("plugin") or []}
    if not client.get("enabled") or not data_dir:
        return None
    drivers = tuple(d for d in ("raw_exec",) if (plugins.get(d) or {}).get("enabled"))
    if "docker" in plugins and shutil.which("docker"):  # the docker driver: a plugin block and a docker CLI
        drivers += ("docker",)
    if not drivers:
        return None
    from .client import ClientConfig, Runner

    vault, consul = _first(cfg, "vault"), _first(cfg, "consul")
    consul_addr = consul.get("address", "127.0.0.1:8500") if cfg.get("consul") else ""
    if consul_addr and "://" not in consul_addr:
        consul_addr = ("https://" if consul.get("ssl") else "http://") + consul_addr
    meta = client.get("meta") or {}
    if isinstance(meta, list):
        meta = meta[0] if meta else {}
    # Declared stand-ins (images that cannot exist here): a simulator setting, not Nomad's (README).
    standins = tuple(i.strip() for i in os.environ.get("NOMAD_SIM_STANDIN_IMAGES", "").split(",") if i.strip())
    host_volumes = {v["__label__"]: {"path": v.get("path", ""), "read_only": bool(v.get("read_only"))}
                    for v in client.get("host_volume") or []}
    docker_volumes = (plugins.get("docker") or {}).get("volumes") or [{}]
    if isinstance(docker_volumes, list):
        docker_volumes = docker_volumes[0] if docker_volumes else {}
    config = ClientConfig(data_dir=data_dir, vault_addr=vault.get("address", "") if vault.get("enabled") else "",
                          vault_jwt_path=vault.get("jwt_auth_backend_path", "jwt-nomad"), consul_addr=consul_addr,
                          consul_token=consul.get("token", ""), meta={k: str(v) for k, v in meta.items()},
                          drivers=drivers, standin_images=standins, host_volumes=host_volumes,
                          docker_volumes_enabled=bool(docker_volumes.get("enabled")))
    return lambda sim: Runner(sim, config)


def _join(block: dict) -> list[str]:
    join = _first(block, "server_join")
    return [str(a) for a in (join.get("retry_join") or join.get("start_join") or block.get("retry_join")
                             or block.get("start_join") or block.get("servers") or [])]


def _cluster(cfg: dict, sim: NomadSim, bind: str, port: int, data_dir: str | None, dev: bool, tls: bool):
    """Make ``sim`` one agent of a cluster (cluster.py): a server whose ``server_join`` names other
    servers forwards to the fixed leader; a client-only agent syncs with the servers of its
    ``server_join`` (or ``servers``). Returns the ClientAgent to start, or None."""
    from .cluster import ClientAgent, ServerRouter, host_of

    server, client = _first(cfg, "server"), _first(cfg, "client")
    advertise = _first(cfg, "advertise")
    scheme = "https" if tls else "http"
    addr = host_of(str(advertise.get("http") or advertise.get("rpc") or bind))
    if addr in ("0.0.0.0", "::", ""):
        addr = "127.0.0.1"
    if dev:
        return None
    if server.get("enabled"):
        peers = [host_of(p) for p in _join(server)]
        if any(p != addr for p in peers):
            sim.router = ServerRouter(sim, addr, peers, port, scheme)
        return None
    if not client.get("enabled") or not data_dir:
        return None
    runner = sim.runner
    drivers = runner.config.drivers if runner is not None else ()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    node = {
        "ID": sim.node_id, "Name": sim.node_name, "Datacenter": sim.datacenter,
        "NodeClass": client.get("node_class", ""),
        "NodePool": client.get("node_pool") or "default", "HTTPAddr": "%s:%d" % (addr, port),
        "Meta": dict(runner.config.meta) if runner is not None else {},
        "Attributes": {"kernel.name": "linux", "cpu.arch": "amd64", "os.name": "debian", "nomad.version": VERSION,
                       "unique.hostname": sim.node_name, "unique.network.ip-address": addr,
                       **{"driver.%s" % d: "1" for d in drivers}},
        "Drivers": {d: {"Attributes": {"driver.%s" % d: "true"}, "Detected": True, "Healthy": True,
                        "HealthDescription": "Healthy", "UpdateTime": now} for d in drivers},
        "HostVolumes": {name: {"Name": name, "Path": v["path"], "ReadOnly": v["read_only"], "ID": ""}
                        for name, v in (runner.config.host_volumes if runner is not None else {}).items()},
        "HostVolumesDir": client.get("host_volumes_dir") or os.path.join(data_dir, "host_volumes"),
    }
    agent = ClientAgent(sim, _join(client), port, node, data_dir, scheme)
    sim.router = agent
    return agent


def _tls_context(cfg: dict):
    tls = _first(cfg, "tls")
    if not tls.get("http"):
        return None
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls["cert_file"], tls["key_file"])
    if tls.get("verify_https_client") and tls.get("ca_file"):
        context.load_verify_locations(tls["ca_file"])
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "version":
        print("Nomad v%s (simulator)" % VERSION)
        return 0
    if argv and argv[0] in ("status", "operator", "acl"):
        from . import cli

        return cli.main(argv)
    if not argv or argv[0] != "agent":
        print("usage: python -m tests.simulators.nomad agent -dev [-bind ADDR] [-http-port N] [-config FILE] "
              "[-data-dir DIR] [-acl-enabled]", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(prog="nomad-sim agent", prefix_chars="-")
    parser.add_argument("-dev", action="store_true")
    parser.add_argument("-bind", default=None)
    parser.add_argument("-http-port", type=int, default=None)
    parser.add_argument("-config", action="append", default=[])
    parser.add_argument("-data-dir", default=None)
    parser.add_argument("-acl-enabled", action="store_true")
    parser.add_argument("-region", default=None)
    parser.add_argument("-dc", default=None)
    parser.add_argument("-node", default=None)
    parser.add_argument("-log-requests", default=None)
    parser.add_argument("-settle-seconds", type=float, default=0.3)
    args = parser.parse_args(argv[1:])
    # Like nomad: -config takes files and directories of *.hcl / *.json (name order);
    # an unknown or invalid setting stops the agent before it starts.
    try:
        cfg = agentconfig.read(args.config)
        data_dir = args.data_dir or cfg.get("data_dir")
        agentconfig.check(cfg, args.dev, data_dir)
        ssl_context = _tls_context(cfg)
        if data_dir:
            os.makedirs(data_dir, mode=0o700, exist_ok=True)
    except (agentconfig.ConfigError, OSError) as exc:
        print("==> %s" % exc, file=sys.stderr)
        return 1
    bind = args.bind or _first(cfg, "addresses").get("http") or cfg.get("bind_addr") or "127.0.0.1"
    port = args.http_port if args.http_port is not None else _first(cfg, "ports").get("http", 4646)
    vault = _first(cfg, "vault")
    sim = NomadSim(acl_enabled=args.acl_enabled or bool(_first(cfg, "acl").get("enabled")),
                   region=args.region or cfg.get("region", "global"),
                   datacenter=args.dc or cfg.get("datacenter", "dc1"),
                   node_name=args.node or cfg.get("name", "sim-node"),
                   vault_default_identity=("default_identity" in vault) if vault else True,
                   data_dir=data_dir, settle_seconds=args.settle_seconds)
    sim.agent_config = cfg
    sim.agent_dev = bool(args.dev)
    runner = _runner(cfg, data_dir)
    if runner is not None:
        sim.attach_runner(runner(sim))
    client_agent = _cluster(cfg, sim, bind, port, data_dir, args.dev, ssl_context is not None)
    server = SimServer(sim, host=bind, port=port, log_path=args.log_requests, ssl_context=ssl_context)

    def _on_term(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, _on_term)
    print("==> Nomad agent (simulator %s) started! HTTP at %s" % (VERSION, server.address), flush=True)
    try:
        server.start()
        sim.start_periodic()  # periodic jobs fire on their cron
        if client_agent is not None:
            client_agent.start()
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        if client_agent is not None:
            client_agent.stop()
        server.stop()
        if sim.runner is not None:
            sim.runner.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
