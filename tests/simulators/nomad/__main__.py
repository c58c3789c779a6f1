"""``python -m tests.simulators.nomad agent -dev [flags]``: the simulator as a process.

Flags follow ``nomad agent``: ``-dev``, ``-bind ADDR``, ``-http-port N`` (our
addition; the real agent takes ports from the config), ``-config FILE|DIR`` (agent HCL or
JSON, checked against the keys Nomad accepts: see config.py),
``-data-dir DIR`` (state survives restarts), ``-acl-enabled``, ``-region``,
``-dc``, ``-node``, ``-log-requests FILE`` (JSON lines). ``nomad version`` prints a version.
"""

from __future__ import annotations

import argparse
import signal
import sys

from ..base import SimServer
from . import config as agentconfig
from .server import VERSION, NomadSim


def _first(cfg: dict, block: str) -> dict:
    return (cfg.get(block) or [{}])[0]


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
    server = SimServer(sim, host=bind, port=port, log_path=args.log_requests, ssl_context=ssl_context)

    def _on_term(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, _on_term)
    print("==> Nomad agent (simulator %s) started! HTTP at %s" % (VERSION, server.address), flush=True)
    try:
        server.start()
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
