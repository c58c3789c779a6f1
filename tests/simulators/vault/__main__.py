"""``python -m tests.simulators.vault server [-dev ...|-config=FILE]``: a vault-like CLI.

Flags follow ``vault server``: ``-dev``, ``-dev-root-token-id``,
``-dev-listen-address``, ``-config`` (HCL or JSON: ``storage "file" {path}``
and ``listener "tcp" {address, tls_disable = true}``). Extra: ``-log-requests
FILE`` appends one JSON line per answered request (the benchmark reads it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

import hcl2

from ..base import SimServer
from .app import VERSION, VaultApp


def _unquote(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _blocks(doc: dict, name: str) -> list[tuple[str, dict]]:
    raw = doc.get(name) or []
    if isinstance(raw, dict):
        raw = [raw]
    out = []
    for block in raw:
        for label, body in block.items():
            out.append((_unquote(label), {k: _unquote(v) for k, v in body.items() if not k.startswith("__")}))
    return out


def load_config(path: str) -> tuple[str, str]:
    """Return (data_dir, listen address) from a Vault server config file."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    doc = json.loads(text) if text.lstrip().startswith("{") else hcl2.loads(text)
    storage = _blocks(doc, "storage") or _blocks(doc, "backend")
    if len(storage) != 1 or storage[0][0] not in ("file", "raft"):
        raise SystemExit("Error loading configuration from %s: exactly one storage \"file\" (or \"raft\") block "
                         "is required by the simulator" % path)
    data_dir = storage[0][1].get("path")
    if not data_dir:
        raise SystemExit("Error loading configuration from %s: storage needs a path" % path)
    listeners = _blocks(doc, "listener")
    if not listeners or listeners[0][0] != "tcp":
        raise SystemExit("Error loading configuration from %s: a listener \"tcp\" block is required" % path)
    listener = listeners[0][1]
    if str(listener.get("tls_disable", "false")).lower() not in ("true", "1"):
        raise SystemExit("Error initializing listener of type tcp: the simulator serves plain HTTP only; set "
                         "tls_disable = true")
    return data_dir, listener.get("address", "127.0.0.1:8200")


def _split_addr(addr: str) -> tuple[str, int]:
    host, _sep, port = addr.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "version":
        print("Vault v%s (simulator)" % VERSION)
        return 0
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
    if args.dev:
        host, port = _split_addr(args.dev_listen_address)
        app = VaultApp(dev=True, dev_root_token=args.dev_root_token_id or None)
    else:
        if not args.config:
            print("Error: a configuration file must be specified (-config), or -dev", file=sys.stderr)
            return 1
        data_dir, addr = load_config(args.config)
        host, port = _split_addr(addr)
        os.makedirs(data_dir, exist_ok=True)
        app = VaultApp(data_dir=data_dir)
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        print("the simulator listens on loopback only, not %s" % host, file=sys.stderr)
        return 1
    server = SimServer(app, host=host, port=port, log_path=args.log_requests or None)
    print("==> Vault server configuration (simulator):", flush=True)
    print("             Listener 1: tcp (addr: \"%s\", tls: \"disabled\")" % server.address[len("http://"):])
    print("                Storage: %s" % ("inmem" if args.dev else "file"))
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
