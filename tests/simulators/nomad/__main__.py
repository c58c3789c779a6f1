"""``python -m tests.simulators.nomad agent -dev [flags]``: the simulator as a process.

Flags follow ``nomad agent``: ``-dev``, ``-bind ADDR``, ``-http-port N`` (our
addition; the real agent takes ports from the config), ``-config FILE`` (HCL:
``bind_addr``, ``ports { http }``, ``data_dir``, ``region``, ``datacenter``,
``name``, ``acl { enabled }``, ``vault { default_identity {} }``),
``-data-dir DIR`` (state survives restarts), ``-acl-enabled``, ``-region``,
``-dc``, ``-node``, ``-log-requests FILE`` (JSON lines). ``nomad version`` prints a version.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import hcl2

from ..base import SimServer
from . import jobspec
from .server import VERSION, NomadSim


def _config(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        tree = hcl2.loads(fh.read(), serialization_options=jobspec._OPTS)
    ctx = jobspec._Ctx("", {})
    out: dict = {}

    def val(v):
        return jobspec.value(v, ctx, "config")

    for key in ("bind_addr", "data_dir", "region", "datacenter", "name"):
        if key in tree:
            out[key] = val(tree[key])
    for block in tree.get("ports", []):
        if "http" in block:
            out["http_port"] = int(val(block["http"]))
    for block in tree.get("acl", []):
        out["acl"] = bool(val(block.get("enabled", False)))
    for block in tree.get("vault", []):
        out["vault_default_identity"] = "default_identity" in block
    return out


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
    cfg: dict = {}
    for path in args.config:
        # Like nomad: -config takes a file or a directory of *.hcl files (loaded in name order).
        files = [os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".hcl")] \
            if os.path.isdir(path) else [path]
        for file in files:
            cfg.update(_config(file))
    bind = args.bind or cfg.get("bind_addr") or "127.0.0.1"
    port = args.http_port if args.http_port is not None else cfg.get("http_port", 4646)
    sim = NomadSim(acl_enabled=args.acl_enabled or cfg.get("acl", False),
                   region=args.region or cfg.get("region", "global"),
                   datacenter=args.dc or cfg.get("datacenter", "dc1"),
                   node_name=args.node or cfg.get("name", "sim-node"),
                   vault_default_identity=cfg.get("vault_default_identity", True),
                   data_dir=args.data_dir or cfg.get("data_dir"), settle_seconds=args.settle_seconds)
    server = SimServer(sim, host=bind, port=port, log_path=args.log_requests)

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
