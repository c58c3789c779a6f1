"""Several simulator agents as one cluster: servers that forward to a fixed leader, and
client-only agents that run the allocations the servers place on their node.

There is no RPC, no Raft and no Serf here (README, known differences):

- the servers of a cluster are the agent's advertise address plus ``server_join.retry_join``;
  the leader is FIXED, the lowest of them (IP order). A follower answers ``/v1/agent/*`` and
  ``/v1/status/*`` itself and forwards every other request to the leader over HTTP (the
  leader's address with this agent's own ``ports.http``), as real servers forward RPCs to
  theirs. Leader down: 500 ``No cluster leader``. All state lives on the leader.
- a client-only agent keeps a local :class:`NomadSim` as the store its :class:`Runner` works on
  and syncs it with a server about once a second through the simulator-internal endpoints
  ``/v1/sim/node/...`` (the stand-ins for the Node.Register / Node.UpdateStatus /
  Node.GetClientAllocs / Node.UpdateAlloc RPCs) and ``/v1/sim/identity/sign`` (workload
  identities are signed with the leader's key).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from ..base import Request, Response

RPC_PORT = 4647
FORWARDED_HEADERS = ("x-nomad-token", "authorization", "x-nomad-namespace", "content-type")
NO_LEADER = "No cluster leader"
NO_SERVERS = "No known servers"


def _addr_key(addr: str) -> tuple:
    host = addr.rsplit(":", 1)[0] if addr.count(":") == 1 else addr
    try:
        return (0, int(ipaddress.ip_address(host)), addr)
    except ValueError:
        return (1, 0, addr)


def host_of(addr: str) -> str:
    """``ADDR`` of ``ADDR`` or ``ADDR:PORT`` (retry_join and advertise entries may carry a port)."""
    return addr.rsplit(":", 1)[0] if addr.count(":") == 1 else addr


def forward(request: Request, base: str, timeout: float = 30.0) -> Response | None:
    """Send ``request`` as it came to ``base`` (``http://ADDR:PORT``); the answer, or None if unreachable."""
    url = base.rstrip("/") + urllib.parse.quote(request.path)
    if request.query:
        url += "?" + urllib.parse.urlencode(request.query)
    headers = {k: v for k, v in request.headers.items() if k in FORWARDED_HEADERS}
    data = request.body if request.method not in ("GET", "HEAD") or request.body else None
    req = urllib.request.Request(url, data=data, method=request.method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw, rheaders = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        status, raw, rheaders = exc.code, exc.read(), exc.headers
    except (OSError, ValueError):
        return None
    out = {"Content-Type": rheaders.get("Content-Type") or "application/json"}
    if rheaders.get("X-Nomad-Index"):
        out["X-Nomad-Index"] = rheaders["X-Nomad-Index"]
    return Response(status, raw, out)


def _request(method: str, base: str, path: str, body: Any = None, token: str = "",
             timeout: float = 2.0) -> tuple[int, Any]:
    """(status, parsed JSON) of one request to another agent; an HTTP error's text; (0, None) if unreachable."""
    headers = {"X-Nomad-Token": token} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, ValueError):
        return 0, None


class _TokenCache:
    """ACL tokens resolved by asking a server (``/v1/acl/token/self``), kept for a while: the
    stand-in for the ACL state a real follower or client has replicated."""

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[float, dict]] = {}

    def resolve(self, secret: str, bases: list[str]) -> dict | None:
        cached = self.tokens.get(secret)
        if cached and time.time() - cached[0] < 30:
            return cached[1]
        for base in bases:
            status, token = _request("GET", base, "/v1/acl/token/self", token=secret)
            if status == 200 and isinstance(token, dict):
                self.tokens[secret] = (time.time(), token)
                return token
            if status in (400, 403, 404):  # the server answered: the token is not valid
                return None
        return cached[1] if cached else None  # no server answers: what we knew


class ServerRouter:
    """One server of a cluster: forwards to the fixed leader unless it is the leader."""

    LOCAL = ("/v1/agent/", "/v1/status/", "/v1/sim/server")

    def __init__(self, sim: Any, advertise: str, peers: list[str], port: int, scheme: str = "http"):
        self.sim = sim
        self.port = port
        self.scheme = scheme
        self.advertise = host_of(advertise)
        self.servers = sorted({self.advertise, *(host_of(p) for p in peers if p)}, key=_addr_key)
        self.leader = self.servers[0]
        self.is_leader = self.leader == self.advertise
        self._tokens = _TokenCache()

    def base(self, addr: str) -> str:
        return "%s://%s:%d" % (self.scheme, addr, self.port)

    def route(self, request: Request) -> Response | None:
        """The answer of the leader for a request this follower forwards, else None (answer here)."""
        if request.path == "/v1/sim/server" and request.method == "GET":  # without the lock: other servers probe
            return Response(200, self.sim.server_info())
        if self.is_leader or request.path.startswith(self.LOCAL):
            return None
        answer = forward(request, self.base(self.leader))
        if answer is None:
            return Response(500, NO_LEADER)
        return answer

    def resolve_token(self, secret: str) -> dict | None:
        return None if self.is_leader else self._tokens.resolve(secret, [self.base(self.leader)])

    def info(self, addr: str) -> dict | None:
        """What server ``addr`` says of itself (None: it does not answer)."""
        if addr == self.advertise:
            return self.sim.server_info()
        status, body = _request("GET", self.base(addr), "/v1/sim/server", timeout=1.0)
        return body if status == 200 and isinstance(body, dict) else None

    def leader_alive(self) -> bool:
        return self.is_leader or self.info(self.leader) is not None

    def status_leader(self) -> str:
        return "%s:%d" % (self.leader, RPC_PORT) if self.leader_alive() else ""

    def peers(self) -> list[str]:
        return ["%s:%d" % (s, RPC_PORT) for s in self.servers if self.info(s) is not None]

    def members(self) -> list[dict]:
        out = []
        for addr in self.servers:
            info = self.info(addr)
            name = (info or {}).get("Name") or addr
            region = (info or {}).get("Region") or self.sim.region
            out.append({"Name": "%s.%s" % (name, region), "Addr": addr, "Port": 4648,
                        "Status": "alive" if info is not None else "failed",
                        "Tags": {"role": "nomad", "region": region,
                                 "dc": (info or {}).get("Datacenter") or self.sim.datacenter,
                                 "build": (info or {}).get("Version") or "", "port": str(RPC_PORT),
                                 "expect": str(len(self.servers))},
                        "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2, "DelegateMin": 2,
                        "DelegateMax": 5, "DelegateCur": 4})
        return out

    def raft_servers(self) -> list[dict]:
        out = []
        for addr in self.servers:
            info = self.info(addr) or {}
            name = "%s.%s" % (info.get("Name") or addr, info.get("Region") or self.sim.region)
            out.append({"ID": info.get("ID") or str(uuid.uuid5(uuid.NAMESPACE_DNS, addr)), "Node": name,
                        "Address": "%s:%d" % (addr, RPC_PORT), "Leader": addr == self.leader, "Voter": True,
                        "RaftProtocol": "3"})
        return out


class ClientAgent:
    """A client-only agent: registers its node with a server, runs what is placed on it, reports back."""

    LOCAL = ("/v1/agent/self", "/v1/agent/health")

    def __init__(self, sim: Any, servers: list[str], port: int, node: dict, data_dir: str,
                 scheme: str = "http", interval: float = 1.0):
        self.sim = sim  # the local store the Runner works on
        self.port = port
        self.scheme = scheme
        self.servers = [host_of(s) for s in servers if s]
        self.node = node
        self.interval = interval
        self.data_dir = data_dir
        self._tokens = _TokenCache()
        self._pushed: dict[str, int] = {}
        self._stop = threading.Event()
        self.current: str | None = None  # the server that answered last
        self.last_heartbeat = 0.0
        path = os.path.join(data_dir, "sim-node.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                self.secret = json.load(fh)["SecretID"]
        else:
            self.secret = str(uuid.uuid4())
            os.makedirs(data_dir, exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                json.dump({"ID": node["ID"], "SecretID": self.secret}, fh)
            os.chmod(path, 0o600)
        sim.identity_signer = self.sign

    def bases(self) -> list[str]:
        ordered = ([self.current] if self.current else []) + [s for s in self.servers if s != self.current]
        return ["%s://%s:%d" % (self.scheme, s, self.port) for s in ordered]

    # ---- the HTTP API of the client agent --------------------------------------------
    def route(self, request: Request) -> Response | None:
        if request.path.startswith(self.LOCAL):
            return None
        for base in self.bases():
            answer = forward(request, base)
            if answer is not None:
                return answer
        return Response(500, NO_SERVERS)  # the client's RPC to its servers fails (also for /v1/status/*)

    def resolve_token(self, secret: str) -> dict | None:
        return self._tokens.resolve(secret, self.bases())

    def known_servers(self) -> str:
        return ",".join("%s:%d" % (s, RPC_PORT) for s in self.servers)

    # ---- the sync with the servers ----------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        for base in self.bases():
            status, answer = _request(method, base, path, body, self.secret, timeout=10.0)
            if status and not (status == 500 and answer == NO_LEADER):
                self.current = base.split("://", 1)[1].rsplit(":", 1)[0]
                return status, answer
        return 0, None

    def sign(self, job: dict, group: dict, task: dict, alloc_id: str, identity: dict) -> str:
        status, answer = self._call("POST", "/v1/sim/identity/sign",
                                    {"NodeID": self.node["ID"], "AllocID": alloc_id, "Task": task["Name"],
                                     "Identity": identity})
        if status != 200 or not isinstance(answer, dict):
            raise OSError("failed to sign workload identity: %s" % (answer or "no server answers"))
        return answer["JWT"]

    def sync_once(self) -> bool:
        """Heartbeat, pull the node's allocations and host volumes, push the client state. False: no server."""
        status = self._call("PUT", "/v1/sim/node/register", dict(self.node, SecretID=self.secret))[0]
        if status != 200:
            return False
        self.last_heartbeat = time.time()
        status, work = self._call("GET", "/v1/sim/node/%s/allocs" % self.node["ID"])
        if status != 200 or not isinstance(work, dict):
            return False
        self._apply(work)
        return self._push()

    def _apply(self, work: dict) -> None:
        sim = self.sim
        with sim.lock:
            sim.host_volumes = {v["ID"]: v for v in work.get("HostVolumes") or []}
            for vol in sim.host_volumes.values():  # the mkdir plugin on this node
                if vol.get("PluginID") == "mkdir" and vol.get("HostPath"):
                    os.makedirs(vol["HostPath"], mode=0o700, exist_ok=True)
            for remote in work.get("Allocs") or []:
                job = remote.pop("Job", None)
                local = sim.allocs.get(remote["ID"])
                if local is None:
                    if remote["DesiredStatus"] != "run" or remote["ClientStatus"] != "pending" or job is None:
                        continue
                    local = copy.deepcopy(remote)
                    local.update({"_settle_at": 0, "_outcome": "real", "_failure": "", "_job": job,
                                  "_batch": job["Type"] in ("batch", "sysbatch")})
                    sim.allocs[local["ID"]] = local
                    if sim.runner is not None and sim.runner.handles(job):
                        sim.runner.start(local, job)
                    else:  # no driver here for it (the server should not have placed it)
                        local["ClientStatus"], local["ClientDescription"] = "failed", "missing drivers"
                    local["ModifyIndex"] = sim._next()
                elif remote["DesiredStatus"] == "stop" and local["DesiredStatus"] == "run":
                    local["DesiredStatus"] = "stop"
                    if local["ClientStatus"] in ("pending", "running"):
                        local["ClientStatus"] = "complete"
                    local["ModifyIndex"] = sim._next()
                    if sim.runner is not None:
                        sim.runner.stop(local["ID"])
            sim._save()

    def _push(self) -> bool:
        sim = self.sim
        with sim.lock:
            changed = [a for a in sim.allocs.values() if self._pushed.get(a["ID"]) != a["ModifyIndex"]]
            updates = [{k: a.get(k) for k in ("ID", "ClientStatus", "ClientDescription", "TaskStates",
                                              "DeploymentStatus", "AllocatedResources")}
                       for a in changed]
            marks = {a["ID"]: a["ModifyIndex"] for a in changed}
        if not updates:
            return True
        status = self._call("PUT", "/v1/sim/node/%s/allocs" % self.node["ID"], {"Allocs": updates})[0]
        if status == 200:
            self._pushed.update(marks)
            return True
        return False

    def start(self) -> None:
        def loop() -> None:
            while True:
                try:
                    self.sync_once()
                except Exception:  # noqa: BLE001 - a server's odd answer must not end the client
                    pass
                if self._stop.wait(self.interval):
                    return

        threading.Thread(target=loop, daemon=True, name="nomad-sim-client-sync").start()

    def stop(self) -> None:
        self._stop.set()
