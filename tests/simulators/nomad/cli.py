"""The `nomad` CLI subcommands roles may call, against a running agent (NOMAD_ADDR, default
http://127.0.0.1:4646; NOMAD_TOKEN; NOMAD_CACERT; or -address/-token/-ca-cert):

- ``nomad status [JOB]``: the jobs table ("No running jobs" when there are none), or one job;
- ``nomad operator raft list-peers``;
- ``nomad operator snapshot save FILE`` / ``nomad operator snapshot restore FILE``;
- ``nomad acl bootstrap [-json]``.

Output and exit codes follow Nomad 1.10's CLI: 0 on success, 1 on any error (message on
stderr, ``Error ...: Unexpected response code: CODE (BODY)`` for an API error)."""

from __future__ import annotations

import json
import os
import sys
import time

from ..cliclient import APIError, request

USAGE = """Usage: nomad <command> [args]

Commands served by the simulator:
    agent                          Runs a Nomad agent
    status [JOB]                   Display the status output for a resource
    operator raft list-peers       Display the current Raft peer configuration
    operator snapshot save FILE    Saves a snapshot of the Nomad server state
    operator snapshot restore FILE Restore a snapshot of the Nomad server state
    acl bootstrap                  Bootstrap the ACL system for initial token
    version                        Prints the Nomad version
"""


class _Ctx:
    def __init__(self, args: list[str]):
        self.address = os.environ.get("NOMAD_ADDR", "http://127.0.0.1:4646")
        self.token = os.environ.get("NOMAD_TOKEN", "")
        self.cacert = os.environ.get("NOMAD_CACERT", "")
        self.json = False
        self.rest: list[str] = []
        it = iter(args)
        for arg in it:
            name, eq, value = arg.lstrip("-").partition("=")
            if not arg.startswith("-") or arg == "-":
                self.rest.append(arg)
            elif name in ("address", "token", "ca-cert"):
                value = value if eq else next(it, "")
                setattr(self, {"address": "address", "token": "token", "ca-cert": "cacert"}[name], value)
            elif name == "json":
                self.json = True
            else:
                raise _Usage("flag provided but not defined: -%s" % name)

    def call(self, method: str, path: str, body=None, raw: bool = False):
        headers = {"X-Nomad-Token": self.token} if self.token else {}
        return request(method, self.address.rstrip("/") + path, body, headers, self.cacert, raw=raw)


class _Usage(Exception):
    pass


def _api_error(what: str, status: int, body) -> int:
    text = body if isinstance(body, str) else json.dumps(body)
    print("Error %s: Unexpected response code: %d (%s)" % (what, status, text.strip()), file=sys.stderr)
    return 1


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _kv(pairs: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _v in pairs)
    return "\n".join("%s = %s" % (k.ljust(width), v) for k, v in pairs)


def _date(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / 1e9)) if ns else ""


def status(ctx: _Ctx) -> int:
    if ctx.rest:
        code, job = ctx.call("GET", "/v1/job/%s" % ctx.rest[0])
        if code != 200:
            if code == 404:
                print('No job(s) with prefix or ID "%s" found' % ctx.rest[0], file=sys.stderr)
                return 1
            return _api_error("querying job", code, job)
        _code, allocs = ctx.call("GET", "/v1/job/%s/allocations" % ctx.rest[0])
        print(_kv([("ID", job["ID"]), ("Name", job["Name"]), ("Submit Date", _date(job.get("SubmitTime", 0))),
                   ("Type", job["Type"]), ("Priority", str(job["Priority"])),
                   ("Datacenters", ",".join(job.get("Datacenters") or [])), ("Namespace", job["Namespace"]),
                   ("Node Pool", job.get("NodePool") or "default"), ("Status", job["Status"]),
                   ("Periodic", str(bool(job.get("Periodic"))).lower()),
                   ("Parameterized", str(bool(job.get("ParameterizedJob"))).lower())]))
        print("\nAllocations")
        if allocs:
            rows = [["ID", "Node ID", "Task Group", "Version", "Desired", "Status"]]
            rows += [[a["ID"][:8], a["NodeID"][:8], a["TaskGroup"], str(a["JobVersion"]), a["DesiredStatus"],
                      a["ClientStatus"]] for a in allocs]
            print(_table(rows))
        else:
            print("No allocations placed")
        return 0
    code, jobs = ctx.call("GET", "/v1/jobs")
    if code != 200:
        return _api_error("querying jobs", code, jobs)
    if not jobs:
        print("No running jobs")
        return 0
    rows = [["ID", "Type", "Priority", "Status", "Submit Date"]]
    rows += [[j["ID"], j["Type"] + ("/periodic" if j.get("Periodic") else ""), str(j["Priority"]), j["Status"],
              _date(j.get("SubmitTime", 0))] for j in jobs]
    print(_table(rows))
    return 0


def raft_list_peers(ctx: _Ctx) -> int:
    code, conf = ctx.call("GET", "/v1/operator/raft/configuration")
    if code != 200:
        return _api_error("getting peers", code, conf)
    rows = [["Node", "ID", "Address", "State", "Voter", "RaftProtocol"]]
    rows += [[s["Node"], s["ID"], s["Address"], "leader" if s["Leader"] else "follower", str(s["Voter"]).lower(),
              s["RaftProtocol"]] for s in conf["Servers"]]
    print(_table(rows))
    return 0


def snapshot(ctx: _Ctx, action: str) -> int:
    if len(ctx.rest) != 1:
        raise _Usage("This command takes one argument: <file>")
    path = ctx.rest[0]
    if action == "save":
        code, data = ctx.call("GET", "/v1/operator/snapshot", raw=True)
        if code != 200:
            return _api_error("getting snapshot", code, data)
        with open(path, "wb") as fh:
            fh.write(data)
        print("State file written to %s" % path)
        return 0
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        print("Error opening snapshot file: %s" % exc, file=sys.stderr)
        return 1
    code, body = ctx.call("PUT", "/v1/operator/snapshot", data)
    if code != 200:
        return _api_error("restoring snapshot", code, body)
    print("Snapshot Restored")
    return 0


def acl_bootstrap(ctx: _Ctx) -> int:
    code, token = ctx.call("POST", "/v1/acl/bootstrap")
    if code != 200:
        return _api_error("bootstrapping", code, token)
    if ctx.json:
        print(json.dumps(token, indent=4))
        return 0
    print(_kv([("Accessor ID", token["AccessorID"]), ("Secret ID", token["SecretID"]), ("Name", token["Name"]),
               ("Type", token["Type"]), ("Global", str(token["Global"]).lower()),
               ("Create Time", token.get("CreateTime", "")), ("Expiry Time", token.get("ExpirationTime") or "<none>"),
               ("Create Index", str(token["CreateIndex"])), ("Modify Index", str(token["ModifyIndex"])),
               ("Policies", ", ".join(token.get("Policies") or []) or "n/a"), ("Roles", "n/a")]))
    return 0


def main(argv: list[str]) -> int:
    """Run one CLI subcommand (``argv`` without the program name); None-like usage errors exit 1."""
    words = []
    for arg in argv:
        if arg.startswith("-"):
            break
        words.append(arg)
    try:
        if words[:1] == ["status"]:
            return status(_Ctx(argv[1:]))
        if words[:3] == ["operator", "raft", "list-peers"]:
            return raft_list_peers(_Ctx(argv[3:]))
        if words[:2] == ["operator", "snapshot"] and words[2:3] in (["save"], ["restore"]):
            return snapshot(_Ctx(argv[3:]), words[2])
        if words[:2] == ["acl", "bootstrap"]:
            return acl_bootstrap(_Ctx(argv[2:]))
    except _Usage as exc:
        print(exc, file=sys.stderr)
        return 1
    except APIError as exc:
        print("Error querying the agent: %s" % exc, file=sys.stderr)
        return 1
    print(USAGE, file=sys.stderr)
    return 1
