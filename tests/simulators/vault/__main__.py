"""``python -m tests.simulators.vault server [-dev ...|-config=FILE]``: a vault-like CLI.

Flags follow ``vault server``: ``-dev``, ``-dev-root-token-id``,
``-dev-listen-address``, ``-config`` (HCL or JSON, checked like Vault does:
see config.py; ``storage "raft"|"file"|"inmem"``, ``listener "tcp"`` with or
without TLS). Extra: ``-log-requests
FILE`` appends one JSON line per answered request (the benchmark reads it).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from ..agentconfig import ConfigError
from ..base import SimServer
from . import config as vault_config
from .app import VERSION, VaultApp

# Opt-in for a listener on a non-loopback address: servers of a cluster in containers reach each other
# over the containers' network (the project's network rule allows containers a test made).
ALLOW_NON_LOOPBACK = "VAULT_SIM_ALLOW_NON_LOOPBACK"


def load_config(path: str) -> tuple[str, str]:
    """Return (data_dir, listen address) from a Vault server config file (kept for callers)."""
    cfg = vault_config.read(path)
    return cfg.data_dir or "", cfg.address


def _split_addr(addr: str) -> tuple[str, int]:
    host, _sep, port = addr.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "version":
        print("Vault v%s (simulator)" % VERSION)
        return 0
    if argv and argv[0] in ("status", "operator"):
        from . import cli

        return cli.main(argv)
    if not argv or argv[0] != "server":
        print("usage: python -m tests.simulators.vault server [-dev] [-config=FILE] ...", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="vault server", prefix_chars="-")
    parser.add_argument("-dev", action="store_true")
    parser.add_argument("-dev-root-token-id", default="")
    parser.add_argument("-dev-listen-address", default="127.0.0.1:8200")
    parser.add_argument("-config", default="")
    parser.add_argument("-log-requests", default="")
    args = parser.parse_args(argv[1:])
    ssl_context = None
    if args.dev:
        host, port = _split_addr(args.dev_listen_address)
        app = VaultApp(dev=True, dev_root_token=args.dev_root_token_id or None)
    else:
        if not args.config:
            print("Error: a configuration file must be specified (-config), or -dev", file=sys.stderr)
            return 1
        try:
            cfg = vault_config.read(args.config)
        except ConfigError as exc:
            print("Error: %s" % exc if not str(exc).startswith("Error") else exc, file=sys.stderr)
            return 1
        for warning in cfg.warnings:
            print(warning, file=sys.stderr)
        host, port = _split_addr(cfg.address)
        ssl_context = cfg.ssl_context
        if cfg.data_dir:
            os.makedirs(cfg.data_dir, exist_ok=True)
        app = VaultApp(data_dir=cfg.data_dir) if cfg.data_dir else VaultApp()
        app.storage_type = cfg.storage_type  # what `vault status` reports
        if cfg.storage_type == "raft" and cfg.data_dir:
            from .ha import HANode

            app.ha = HANode(app, cfg.data_dir, cfg.node_id, cfg.api_addr, cfg.cluster_addr, cfg.retry_join)
    if not (host.startswith("127.") or host in ("localhost", "::1")) and os.environ.get(ALLOW_NON_LOOPBACK) != "1":
        print("the simulator listens on loopback only, not %s (set %s=1 only inside a container or VM a test "
              "made, e.g. a molecule cluster)" % (host, ALLOW_NON_LOOPBACK), file=sys.stderr)
        return 1
    server = SimServer(app, host=host, port=port, log_path=args.log_requests or None, ssl_context=ssl_context)
    print("==> Vault server configuration (simulator):", flush=True)
    print("             Listener 1: tcp (addr: \"%s:%d\", tls: \"%s\")" % (
        host, port, "enabled" if ssl_context else "disabled"))
    print("                Storage: %s" % ("inmem" if args.dev else cfg.storage_type))
    print("                Version: Vault v%s" % VERSION)
    if args.dev:
        print("\nUnseal Key: %s" % app.dev_unseal_key)
        print("Root Token: %s" % app.dev_root_token)
    print("\n==> Vault server started! Log data will stream in below:", flush=True)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.seal() if not app.sealed else None
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
