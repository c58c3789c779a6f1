"""The Nomad simulator as a cluster: 3 server agents and 1 client-only agent as processes on
127.0.0.2-.5 (one free port each, the same for all), ACLs on, driven only by agent HCL as the nomad
role renders it (bind_addr, advertise, ports.http, server_join/retry_join, client meta, host_volumes_dir).

Asserts that a raw_exec job is placed on the client's node and runs there for real, that its
deployment becomes healthy through a follower, that every server shows the same allocations,
that stopping the job ends the process, that followers forward to the fixed leader (the lowest
address) and say ``No cluster leader`` while it is down and that its state is back after a
restart, that every server serves the leader's JWKS and that identities the client gets signed
verify with it (and Vault's JWT auth with server 1's JWKS URL logs the client's task in), that a
host volume registered through the client's API lands on its node, and that a client started
before its servers says ``No known servers`` and registers once they answer.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.support.net import http
from tests.support.process import Proc, wait

REPO = Path(__file__).resolve().parents[3]
SERVERS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
CLIENT = "127.0.0.5"

AGENT_HCL = """
name      = "{name}"
data_dir  = "{data}"
bind_addr = "{addr}"
advertise {{
  http = "{addr}"
  rpc  = "{addr}"
  serf = "{addr}"
}}
ports {{
  http = {port}
}}
acl {{
  enabled = true
}}
"""

SERVER_HCL = AGENT_HCL + """server {{
  enabled          = true
  bootstrap_expect = 3
  server_join {{
    retry_join = {servers}
  }}
}}
"""

CLIENT_HCL = AGENT_HCL + """server {{
  enabled = false
}}
client {{
  enabled          = true
  host_volumes_dir = "{data}/host_volumes"
  server_join {{
    retry_join = {servers}
  }}
  meta {{
    role = "apps"
  }}
}}
plugin "raw_exec" {{
  config {{
    enabled = true
  }}
}}
{extra}
"""

VAULT_HCL = """
vault {
  enabled               = true
  address               = "%s"
  jwt_auth_backend_path = "jwt-nomad"
  default_identity {
    aud = ["vault.io"]
    ttl = "1h"
  }
}
"""

TASK_SCRIPT = """#!/bin/sh
echo $$ > "$1"
exec sleep 300
"""


def _port() -> int:
    """A port free on all four loopback addresses."""
    for _attempt in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        try:
            for addr in (*SERVERS, CLIENT):
                with socket.socket() as probe:
                    probe.bind((addr, port))
        except OSError:
            continue
        return port
    raise AssertionError("no port free on 127.0.0.2-.5")


class Cluster:
    def __init__(self, tmp: Path, client_extra: str = ""):
        self.tmp = tmp
        self.client_extra = client_extra
        self.port = _port()
        self.procs: dict[str, Proc] = {}
        self.token = ""
        self.configs: dict[str, Path] = {}
        for i, addr in enumerate(SERVERS, 1):
            self._config("server-%d" % i, addr, SERVER_HCL)
        self._config("client-1", CLIENT, CLIENT_HCL)

    def _config(self, name: str, addr: str, template: str) -> None:
        data = self.tmp / name
        data.mkdir()
        path = self.tmp / ("%s.hcl" % name)
        path.write_text(template.format(name=name, data=data, addr=addr, port=self.port,
                                        servers=json.dumps(list(SERVERS)), extra=self.client_extra))
        self.configs[addr] = path

    def url(self, addr: str) -> str:
        return "http://%s:%d" % (addr, self.port)

    def start(self, addr: str) -> None:
        log = self.tmp / ("%s.log" % addr)
        self.procs[addr] = Proc([sys.executable, "-m", "tests.simulators.nomad", "agent", "-config",
                                 self.configs[addr]], log, cwd=str(REPO))
        self.procs[addr].wait_http(self.url(addr) + "/v1/agent/health", timeout=30)

    def stop(self, addr: str) -> None:
        self.procs.pop(addr).stop()

    def api(self, addr: str, method: str, path: str, body=None):
        return http(method, self.url(addr) + path, body, headers={"X-Nomad-Token": self.token}, timeout=30)

    def ok(self, addr: str, method: str, path: str, body=None):
        status, answer = self.api(addr, method, path, body)
        assert status == 200, (method, path, status, answer)
        return answer

    def register(self, addr: str, hcl: str) -> dict:
        job = self.ok(addr, "POST", "/v1/jobs/parse", {"JobHCL": hcl, "Canonicalize": True})
        return self.ok(addr, "PUT", "/v1/jobs", {"Job": job})

    def close(self) -> None:
        for proc in self.procs.values():
            proc.stop()


def _started(c: Cluster, order=(*SERVERS, CLIENT)) -> Cluster:
    for addr in order:
        c.start(addr)
    status, boot = http("POST", c.url(SERVERS[1]) + "/v1/acl/bootstrap")  # through a follower
    assert status == 200, boot
    c.token = boot["SecretID"]
    return c


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        yield _started(c)
    finally:
        c.close()


def _job(name: str, script: Path, out: Path, volume: str = "", task_extra: str = "") -> str:
    """A raw_exec job running ``script out``; ``task_extra``: more task stanzas (indented 6)."""
    vol = 'volume "data" {\n      type   = "host"\n      source = "%s"\n    }\n' % volume if volume else ""
    return """
job "%s" {
  datacenters = ["dc1"]
  group "app" {
    %s
    task "main" {
      driver = "raw_exec"
      config {
        command = "%s"
        args    = ["%s"]
      }
%s    }
  }
}
""" % (name, vol, script, out, task_extra)


def _running(pid_file: Path) -> int:
    if not pid_file.exists() or not pid_file.read_text().strip():
        return 0
    pid = int(pid_file.read_text())
    return pid if os.path.exists("/proc/%d" % pid) else 0


def test_a_job_runs_on_the_client_node_and_every_server_sees_it(cluster, tmp_path, run_module):
    leader, follower, other = SERVERS
    script = tmp_path / "task.sh"
    script.write_text(TASK_SCRIPT)
    script.chmod(0o755)

    client_self = cluster.ok(CLIENT, "GET", "/v1/agent/self")
    node_id = client_self["stats"]["client"]["node_id"]
    assert client_self["config"]["Server"]["Enabled"] is False
    nodes = wait(lambda: cluster.ok(follower, "GET", "/v1/nodes"), what="the client node registered")
    assert [(n["ID"], n["Name"], n["Status"], n["Datacenter"]) for n in nodes] == [
        (node_id, "client-1", "ready", "dc1")]
    node = cluster.ok(other, "GET", "/v1/node/%s" % node_id)
    assert node["Meta"] == {"role": "apps"} and node["Drivers"]["raw_exec"]["Healthy"] is True
    assert node["HTTPAddr"] == "%s:%d" % (CLIENT, cluster.port)

    # cluster membership, leader fixed at the lowest address
    for addr in (*SERVERS, CLIENT):
        assert cluster.ok(addr, "GET", "/v1/status/leader") == "%s:4647" % leader
    assert sorted(cluster.ok(follower, "GET", "/v1/status/peers")) == ["%s:4647" % a for a in SERVERS]
    members = cluster.ok(other, "GET", "/v1/agent/members")["Members"]
    assert [(m["Name"], m["Addr"], m["Status"], m["Tags"]["role"]) for m in members] == [
        ("server-%d.global" % i, a, "alive", "nomad") for i, a in enumerate(SERVERS, 1)]
    raft = cluster.ok(follower, "GET", "/v1/operator/raft/configuration")["Servers"]
    assert [(s["Address"], s["Leader"]) for s in raft] == [("%s:4647" % a, a == leader) for a in SERVERS]

    # the nomad_job module, through a follower, registers the job and waits for its healthy deployment;
    # the job runs on the client's node
    out = tmp_path / "app.pid"
    res = run_module("nomad_job", {"address": cluster.url(follower), "token": cluster.token,
                                   "content": _job("clustered", script, out), "wait": True, "wait_timeout": 60})
    assert res["_rc"] == 0 and res["changed"] is True, res
    assert res["deployment"]["Status"] == "successful"
    assert _running(out), "the task process runs"
    dep = cluster.ok(other, "GET", "/v1/job/clustered/deployment")
    assert dep["Status"] == "successful" and dep["TaskGroups"]["app"]["HealthyAllocs"] == 1
    views = [cluster.ok(a, "GET", "/v1/job/clustered/allocations") for a in (*SERVERS, CLIENT)]
    assert all([(x["ID"], x["NodeID"], x["ClientStatus"]) for x in v] == [
        (views[0][0]["ID"], node_id, "running")] for v in views), views
    assert cluster.ok(other, "GET", "/v1/job/clustered")["Status"] == "running"
    assert [a["ID"] for a in cluster.ok(leader, "GET", "/v1/node/%s/allocations" % node_id)] == [views[0][0]["ID"]]
    alloc_dir = tmp_path / "client-1" / "alloc" / views[0][0]["ID"] / "main"
    assert alloc_dir.is_dir()

    # workload identities: every server serves the leader's key; the client's tasks get tokens signed with it
    jwks = cluster.ok(leader, "GET", "/.well-known/jwks.json")
    assert cluster.ok(follower, "GET", "/.well-known/jwks.json") == jwks
    assert cluster.ok(CLIENT, "GET", "/.well-known/jwks.json") == jwks
    secret = json.loads((tmp_path / "client-1" / "sim-node.json").read_text())["SecretID"]
    status, signed = http("POST", cluster.url(follower) + "/v1/sim/identity/sign",
                          {"AllocID": views[0][0]["ID"], "Task": "main", "Identity": {"Audience": ["vault.io"]}},
                          headers={"X-Nomad-Token": secret})
    assert status == 200, signed
    import jwt as pyjwt

    key = pyjwt.PyJWK(jwks["keys"][0]).key
    claims = pyjwt.decode(signed["JWT"], key, algorithms=["RS256"], audience="vault.io")
    assert claims["nomad_job_id"] == "clustered" and claims["nomad_task"] == "main"
    assert http("POST", cluster.url(follower) + "/v1/sim/identity/sign", {"AllocID": views[0][0]["ID"]},
                headers={"X-Nomad-Token": cluster.token})[0] == 403  # only the node itself

    # a host volume registered through the client's API lands on its node; a job using it runs there
    hostdir = tmp_path / "hostvol"
    hostdir.mkdir()
    res = run_module("nomad_host_volume", {"address": cluster.url(CLIENT), "token": cluster.token,
                                           "name": "data", "host_path": str(hostdir)})
    assert res["_rc"] == 0 and res["changed"] is True and res["node_id"] == node_id, res
    assert cluster.ok(leader, "GET", "/v1/volume/host/%s" % res["volume_id"])["NodeID"] == node_id
    status, refused = cluster.api(leader, "PUT", "/v1/volume/host/register", {"Volume": {
        "Name": "elsewhere", "NodeID": "0" * 8 + node_id[8:], "HostPath": str(hostdir)}})
    assert status == 400 and "not found" in refused
    out2 = tmp_path / "vol.pid"
    cluster.register(follower, _job("with-volume", script, out2, volume="data"))
    wait(lambda: _running(out2), timeout=30, what="the task using the host volume")
    assert cluster.ok(leader, "GET", "/v1/job/with-volume/allocations")[0]["NodeID"] == node_id
    missing = cluster.register(leader, _job("no-volume", script, tmp_path / "none.pid", volume="nope"))
    ev = cluster.ok(other, "GET", "/v1/evaluation/%s" % missing["EvalID"])
    assert ev["FailedTGAllocs"]["app"]["ConstraintFiltered"] == {"missing compatible host volumes": 1}
    assert cluster.ok(leader, "GET", "/v1/evaluation/%s" % ev["BlockedEval"])["Status"] == "blocked"

    # stopping the job (through a follower) ends the process on the client
    cluster.ok(other, "DELETE", "/v1/job/clustered")
    wait(lambda: not _running(out), timeout=30, what="the task process to end")
    wait(lambda: cluster.ok(leader, "GET", "/v1/job/clustered")["Status"] == "dead", what="the job dead")

    def task_dead():
        alloc = cluster.ok(follower, "GET", "/v1/allocation/%s" % views[0][0]["ID"])
        return alloc if alloc["TaskStates"]["main"]["State"] == "dead" else None

    final = wait(task_dead, what="the task dead on the server")
    assert final["DesiredStatus"] == "stop" and final["ClientStatus"] == "complete"
    cluster.ok(leader, "DELETE", "/v1/job/with-volume")
    wait(lambda: not _running(out2), timeout=30, what="the volume task to end")


def test_followers_forward_to_the_fixed_leader_and_state_survives_it(cluster, tmp_path):
    leader, follower, other = SERVERS
    cluster.ok(follower, "PUT", "/v1/var/app/config", {"Items": {"greeting": "hi"}})
    jwks = cluster.ok(leader, "GET", "/.well-known/jwks.json")
    node_id = cluster.ok(CLIENT, "GET", "/v1/agent/self")["stats"]["client"]["node_id"]  # the client knows the token

    script = tmp_path / "task.sh"
    script.write_text(TASK_SCRIPT)
    script.chmod(0o755)
    out = tmp_path / "app.pid"
    cluster.register(follower, _job("survivor", script, out))
    pid = wait(lambda: _running(out), timeout=30, what="the task process")
    alloc_id = wait(lambda: [a["ID"] for a in cluster.ok(leader, "GET", "/v1/job/survivor/allocations")
                             if a["ClientStatus"] == "running"], what="the allocation running")[0]

    cluster.stop(other)  # a follower down: the leader and the other follower still serve
    assert cluster.ok(follower, "GET", "/v1/var/app/config")["Items"] == {"greeting": "hi"}
    assert sorted(cluster.ok(leader, "GET", "/v1/status/peers")) == ["%s:4647" % a for a in (leader, follower)]
    members = {m["Addr"]: m["Status"] for m in cluster.ok(leader, "GET", "/v1/agent/members")["Members"]}
    assert members == {leader: "alive", follower: "alive", other: "failed"}

    cluster.stop(leader)  # the leader down: no election here, the cluster has no leader
    assert cluster.api(follower, "GET", "/v1/var/app/config") == (500, "No cluster leader")
    assert cluster.api(follower, "GET", "/v1/status/leader") == (200, "")
    assert cluster.api(CLIENT, "GET", "/v1/jobs")[0] == 500
    assert cluster.api(CLIENT, "GET", "/v1/status/leader") == (200, "")  # relayed from a follower
    client_self = cluster.ok(CLIENT, "GET", "/v1/agent/self")  # the client agent itself still answers
    assert client_self["stats"]["client"]["node_id"] == node_id

    time.sleep(2)  # the client's sync finds no leader a few times: it keeps its task running
    assert _running(out) == pid

    cluster.start(leader)
    cluster.start(other)
    assert cluster.ok(other, "GET", "/v1/var/app/config")["Items"] == {"greeting": "hi"}
    assert cluster.ok(follower, "GET", "/v1/status/leader") == "%s:4647" % leader
    assert cluster.ok(other, "GET", "/.well-known/jwks.json") == jwks
    status, again = http("POST", cluster.url(other) + "/v1/acl/bootstrap")
    assert status == 400 and "ACL bootstrap already done" in again
    nodes = wait(lambda: [n for n in cluster.ok(leader, "GET", "/v1/nodes") if n["Status"] == "ready"],
                 what="the client node ready again")
    assert [n["Name"] for n in nodes] == ["client-1"]
    alloc = cluster.ok(other, "GET", "/v1/allocation/%s" % alloc_id)
    assert alloc["ClientStatus"] == "running" and _running(out) == pid, "the same task, still running"

    cluster.stop(CLIENT)  # a restarted client agent re-attaches to its task (and can still stop it)
    assert _running(out) == pid
    cluster.start(CLIENT)
    assert cluster.ok(CLIENT, "GET", "/v1/agent/self")["stats"]["client"]["node_id"] == node_id
    time.sleep(1.5)
    alloc = cluster.ok(leader, "GET", "/v1/allocation/%s" % alloc_id)
    assert alloc["ClientStatus"] == "running" and alloc["NodeID"] == node_id and _running(out) == pid
    cluster.ok(follower, "DELETE", "/v1/job/survivor")
    wait(lambda: not _running(out), timeout=30, what="the task process to end")


def test_a_client_started_before_its_servers_waits_for_them(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start(CLIENT)
        assert http("GET", c.url(CLIENT) + "/v1/status/leader") == (500, "No known servers")
        assert http("GET", c.url(CLIENT) + "/v1/agent/health")[0] == 200
        _started(c, SERVERS)
        nodes = wait(lambda: c.ok(SERVERS[0], "GET", "/v1/nodes"), what="the client node registered")
        assert [(n["Name"], n["Status"]) for n in nodes] == [("client-1", "ready")]
        assert c.ok(CLIENT, "GET", "/v1/status/leader") == "%s:4647" % SERVERS[0]
    finally:
        c.close()


VAULT_TASK = """      vault {
        role = "secretive"
      }
      template {
        data        = "greeting={{ with secret \\"kv/data/app\\" }}{{ .Data.data.greeting }}{{ end }}"
        destination = "local/greeting.txt"
      }
"""


def test_vault_jwt_auth_with_a_servers_jwks_accepts_the_clients_tasks(tmp_path):
    vault_port = _port()
    vault_addr = "http://127.0.0.1:%d" % vault_port
    c = Cluster(tmp_path, client_extra=VAULT_HCL % vault_addr)
    vault = Proc([sys.executable, "-m", "tests.simulators.vault", "server", "-dev", "-dev-root-token-id=root",
                  "-dev-listen-address=127.0.0.1:%d" % vault_port], tmp_path / "vault.log", cwd=str(REPO))
    try:
        vault.wait_http(vault_addr + "/v1/sys/health")
        _started(c)

        def vault_req(method, path, body=None):
            return http(method, "%s/v1/%s" % (vault_addr, path), body, {"X-Vault-Token": "root"})

        # Vault as the vault role configures it, with the JWKS URL of server 1
        assert vault_req("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})[0] == 204
        assert vault_req("POST", "kv/data/app", {"data": {"greeting": "hello-from-vault"}})[0] == 200
        assert vault_req("POST", "sys/auth/jwt-nomad", {"type": "jwt"})[0] == 204
        assert vault_req("POST", "auth/jwt-nomad/config", {
            "jwks_url": c.url(SERVERS[0]) + "/.well-known/jwks.json", "jwt_supported_algs": ["RS256"]})[0] == 204
        assert vault_req("POST", "sys/policies/acl/secretive",
                         {"policy": 'path "kv/data/app" {\n  capabilities = ["read"]\n}\n'})[0] == 204
        status, out = vault_req("POST", "auth/jwt-nomad/role/secretive", {
            "role_type": "jwt", "bound_audiences": ["vault.io"], "user_claim": "/nomad_job_id",
            "user_claim_json_pointer": True, "bound_claims": {"nomad_job_id": "secretive"},
            "token_policies": ["secretive"], "token_type": "service"})
        assert status == 204, out

        script = tmp_path / "task.sh"
        script.write_text(TASK_SCRIPT)
        script.chmod(0o755)
        out = tmp_path / "secretive.pid"
        c.register(SERVERS[2], _job("secretive", script, out, task_extra=VAULT_TASK))
        wait(lambda: _running(out), timeout=30, what="the task with a Vault token")
        (alloc,) = c.ok(SERVERS[1], "GET", "/v1/job/secretive/allocations")
        rendered = tmp_path / "client-1" / "alloc" / alloc["ID"] / "main" / "local" / "greeting.txt"
        assert rendered.read_text().strip() == "greeting=hello-from-vault"
        token = (tmp_path / "client-1" / "alloc" / alloc["ID"] / "main" / "secrets" / "vault_token").read_text()
        status, looked = http("GET", vault_addr + "/v1/auth/token/lookup-self", None, {"X-Vault-Token": token})
        assert status == 200 and "secretive" in looked["data"]["policies"]
        c.ok(SERVERS[0], "DELETE", "/v1/job/secretive")
        wait(lambda: not _running(out), timeout=30, what="the task to end")
    finally:
        c.close()
        vault.stop()
