"""The `vault` CLI subcommands roles may call, against a running server (VAULT_ADDR, default
https://127.0.0.1:8200; VAULT_CACERT; VAULT_TOKEN; or -address=/-ca-cert=):

- ``vault status [-format=json]``: the seal status table; exit 0 unsealed, 2 sealed (or not
  initialised), 1 on an error reaching the server, as Vault's CLI documents;
- ``vault operator init [-key-shares=5] [-key-threshold=3] [-format=json] [-status]``
  (``-status``: exit 0 initialised, 2 not);
- ``vault operator unseal [-format=json] [-reset] KEY``.

Exit codes follow Vault's CLI: 0 success, 1 local error (bad flags, no answer), 2 an API error
("Error ...: Error making API request." with the URL, the code and Vault's errors, on stderr)."""

from __future__ import annotations

import json
import os
import sys

from ..cliclient import APIError, request


class _Usage(Exception):
    pass


class _Ctx:
    FLAGS = {"address": "address", "ca-cert": "cacert", "format": "format", "key-shares": "shares",
             "key-threshold": "threshold"}
    BOOLS = ("status", "reset")

    def __init__(self, args: list[str]):
        self.address = os.environ.get("VAULT_ADDR", "https://127.0.0.1:8200")
        self.cacert = os.environ.get("VAULT_CACERT", "")
        self.token = os.environ.get("VAULT_TOKEN", "")
        self.format = os.environ.get("VAULT_FORMAT", "table")
        self.shares, self.threshold = "5", "3"
        self.status = self.reset = False
        self.rest: list[str] = []
        it = iter(args)
        for arg in it:
            if not arg.startswith("-") or arg == "-":
                self.rest.append(arg)
                continue
            name, eq, value = arg.lstrip("-").partition("=")
            if name in self.FLAGS:
                setattr(self, self.FLAGS[name], value if eq else next(it, ""))
            elif name in self.BOOLS:
                setattr(self, name, value.lower() not in ("false", "0") if eq else True)
            else:
                raise _Usage("flag provided but not defined: -%s" % name)
        if self.format not in ("table", "json"):
            raise _Usage('Invalid output format: %s' % self.format)

    def url(self, path: str) -> str:
        return "%s/v1/%s" % (self.address.rstrip("/"), path)

    def call(self, method: str, path: str, body=None):
        headers = {"X-Vault-Token": self.token} if self.token else {}
        return request(method, self.url(path), body, headers, self.cacert)


def _api_error(ctx: _Ctx, what: str, method: str, path: str, status: int, body) -> int:
    errors = body.get("errors") if isinstance(body, dict) else [body]
    print("Error %s: Error making API request.\n\nURL: %s %s\nCode: %d. Errors:\n\n%s"
          % (what, method, ctx.url(path), status, "\n".join("* %s" % e for e in errors or [])), file=sys.stderr)
    return 2


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _v in [("Key", ""), *rows])
    lines = ["%s    %s" % ("Key".ljust(width), "Value"), "%s    %s" % ("---".ljust(width), "-----")]
    return "\n".join(lines + ["%s    %s" % (k.ljust(width), v) for k, v in rows])


def _print_seal_status(ctx: _Ctx, seal: dict, leader: dict | None = None) -> None:
    if ctx.format == "json":
        print(json.dumps(seal, indent=2))
        return
    rows = [("Seal Type", seal["type"]), ("Initialized", str(seal["initialized"]).lower()),
            ("Sealed", str(seal["sealed"]).lower()), ("Total Shares", str(seal["n"])),
            ("Threshold", str(seal["t"]))]
    if seal["sealed"]:
        rows += [("Unseal Progress", "%d/%d" % (seal["progress"], seal["t"])),
                 ("Unseal Nonce", seal.get("nonce") or "n/a")]
    rows += [("Version", seal["version"]), ("Build Date", seal.get("build_date", "")),
             ("Storage Type", seal.get("storage_type", ""))]
    if not seal["sealed"]:
        rows += [("Cluster Name", seal.get("cluster_name", "")), ("Cluster ID", seal.get("cluster_id", ""))]
    if leader and leader.get("ha_enabled"):
        rows += [("HA Enabled", "true"), ("HA Cluster", leader.get("leader_cluster_address") or "n/a"),
                 ("HA Mode", "active" if leader.get("is_self") else "standby")]
        if leader.get("is_self"):
            rows.append(("Active Since", leader.get("active_time", "")))
        else:
            rows.append(("Active Node Address", leader.get("leader_address") or "<none>"))
    else:
        rows.append(("HA Enabled", "false"))
    print(_table(rows))


def status(ctx: _Ctx) -> int:
    code, seal = ctx.call("GET", "sys/seal-status")
    if code != 200:
        return _api_error(ctx, "checking seal status", "GET", "sys/seal-status", code, seal)
    leader = None
    if not seal["sealed"] and ctx.format != "json":
        code, body = ctx.call("GET", "sys/leader")
        leader = body if code == 200 and isinstance(body, dict) else None
    _print_seal_status(ctx, seal, leader)
    return 2 if seal["sealed"] else 0


def operator_init(ctx: _Ctx) -> int:
    if ctx.status:
        code, body = ctx.call("GET", "sys/init")
        if code != 200:
            return _api_error(ctx, "checking init status", "GET", "sys/init", code, body)
        if body["initialized"]:
            print("Vault is initialized")
            return 0
        print("Vault is not initialized")
        return 2
    try:
        shares, threshold = int(ctx.shares), int(ctx.threshold)
    except ValueError as exc:
        raise _Usage("invalid value for -key-shares or -key-threshold: %s" % exc) from exc
    code, body = ctx.call("PUT", "sys/init", {"secret_shares": shares, "secret_threshold": threshold})
    if code != 200:
        return _api_error(ctx, "initializing", "PUT", "sys/init", code, body)
    if ctx.format == "json":
        print(json.dumps({"unseal_keys_b64": body["keys_base64"], "unseal_keys_hex": body["keys"],
                          "unseal_shares": shares, "unseal_threshold": threshold, "recovery_keys_b64": [],
                          "recovery_keys_hex": [], "recovery_keys_shares": 0, "recovery_keys_threshold": 0,
                          "root_token": body["root_token"]}, indent=2))
        return 0
    for i, key in enumerate(body["keys_base64"], 1):
        print("Unseal Key %d: %s" % (i, key))
    print("\nInitial Root Token: %s\n" % body["root_token"])
    print("Vault initialized with %d key shares and a key threshold of %d. Please securely\n"
          "distribute the key shares printed above. When the Vault is re-sealed,\n"
          "restarted, or stopped, you must supply at least %d of these keys to unseal it\n"
          "before it can start servicing requests." % (shares, threshold, threshold))
    return 0


def operator_unseal(ctx: _Ctx) -> int:
    if ctx.reset:
        body = {"reset": True}
    else:
        if len(ctx.rest) != 1:  # the real CLI prompts for the key; the simulator does not
            raise _Usage("Too many or too few arguments: give the unseal key as the one argument")
        body = {"key": ctx.rest[0]}
    code, seal = ctx.call("PUT", "sys/unseal", body)
    if code != 200:
        return _api_error(ctx, "unsealing", "PUT", "sys/unseal", code, seal)
    _print_seal_status(ctx, seal)
    return 0


def main(argv: list[str]) -> int:
    words = [a for a in argv[:2] if not a.startswith("-")]
    try:
        if words[:1] == ["status"]:
            return status(_Ctx(argv[1:]))
        if words[:2] == ["operator", "init"]:
            return operator_init(_Ctx(argv[2:]))
        if words[:2] == ["operator", "unseal"]:
            return operator_unseal(_Ctx(argv[2:]))
    except _Usage as exc:
        print(exc, file=sys.stderr)
        return 1
    except APIError as exc:
        print("Error checking seal status: %s" % exc, file=sys.stderr)
        return 1
    print("Usage: vault <command> [args]\n\nCommands served by the simulator: server, status, operator init, "
          "operator unseal, version", file=sys.stderr)
    return 1
