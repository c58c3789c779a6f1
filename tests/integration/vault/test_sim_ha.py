"""The Vault simulator as a three-server raft cluster, as roles/vault configures one.

Three ``vault server -config`` processes on 127.0.0.2, .3 and .4 (one free port,
HTTPS with a test CA, like the role's listener), each with a ``retry_join``
block per other server carrying ``leader_ca_cert_file``. One scenario, in order
(the steps depend on each other, so they are one test and never split across
xdist workers): init on node 1, unseal all three, health/leader/raft
configuration, request forwarding through the standbys, a wrong key, a restarted
standby, the active node down and back.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.simulators.vault.testcerts import write_pki

from .conftest import REAL_VAULT

REPO = Path(__file__).resolve().parents[3]
HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
NO_ACTIVE = "local node not active but active cluster node not found"

pytestmark = [pytest.mark.simulator_only,
              pytest.mark.skipif(REAL_VAULT, reason="starts its own simulated cluster")]


def _free_port() -> int:
    for _attempt in range(50):
        with socket.socket() as probe:
            probe.bind((HOSTS[0], 0))
            port = probe.getsockname()[1]
        try:
            for host in HOSTS:
                for p in (port, port + 1):
                    with socket.socket() as s:
                        s.bind((host, p))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on %s" % HOSTS)


class Cluster:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.ca, cert, key = write_pki(tmp, HOSTS)
        self.port = _free_port()
        self.procs: dict[int, subprocess.Popen] = {}
        self.configs = []
        for index, host in enumerate(HOSTS):
            data = tmp / ("node%d" % (index + 1))
            data.mkdir()
            joins = "".join(
                '\n  retry_join {\n    leader_api_addr     = "https://%s:%d"\n    leader_ca_cert_file = "%s"\n  }\n'
                % (peer, self.port, self.ca) for peer in HOSTS if peer != host)
            text = (
                'ui            = false\ndisable_mlock = true\n'
                'api_addr      = "https://%(host)s:%(port)d"\ncluster_addr  = "https://%(host)s:%(cport)d"\n\n'
                'storage "raft" {\n  path    = "%(data)s"\n  node_id = "node%(n)d"\n%(joins)s}\n\n'
                'listener "tcp" {\n  address         = "%(host)s:%(port)d"\n'
                '  cluster_address = "%(host)s:%(cport)d"\n  tls_cert_file   = "%(cert)s"\n'
                '  tls_key_file    = "%(key)s"\n}\n'
            ) % {"host": host, "port": self.port, "cport": self.port + 1, "data": data, "n": index + 1,
                 "joins": joins, "cert": cert, "key": key}
            path = tmp / ("vault%d.hcl" % (index + 1))
            path.write_text(text)
            self.configs.append(path)
        self.session = requests.Session()  # verify= per request: REQUESTS_CA_BUNDLE overrides session.verify

    def url(self, node: int, path: str) -> str:
        return "https://%s:%d/v1/%s" % (HOSTS[node - 1], self.port, path)

    def api(self, node: int, method: str, path: str, body=None, token: str | None = None, **kw):
        headers = {"X-Vault-Token": token} if token else {}
        return self.session.request(method, self.url(node, path), json=body, headers=headers, timeout=20,
                                    verify=str(self.ca), **kw)

    def start(self, node: int) -> None:
        log = open(self.tmp / ("node%d.log" % node), "a")  # noqa: SIM115 - kept open by the child
        self.procs[node] = subprocess.Popen(
            [sys.executable, "-m", "tests.simulators.vault", "server", "-config=%s" % self.configs[node - 1]],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)})
        log.close()
        deadline = time.monotonic() + 20
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.procs[node].poll() is not None:
                raise AssertionError("node%d exited: %s" % (node, (self.tmp / ("node%d.log" % node)).read_text()))
            try:
                self.api(node, "GET", "sys/seal-status")
                return
            except requests.ConnectionError as exc:
                last = exc
                time.sleep(0.1)
        raise AssertionError("node%d did not start: %s" % (node, last))

    def stop(self, node: int) -> None:
        proc = self.procs.pop(node, None)
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def unseal(self, node: int, keys: list[str]) -> dict:
        status: dict = {}
        for key in keys:
            resp = self.api(node, "POST", "sys/unseal", {"key": key})
            assert resp.status_code == 200, resp.text
            status = resp.json()
        return status


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        for node in (1, 2, 3):
            c.start(node)
        yield c
    finally:
        for node in list(c.procs):
            c.stop(node)


def test_three_server_raft_cluster(cluster):
    c = cluster
    started = time.monotonic()
    # Before any init: nobody is initialised, every node sealed.
    for node in (1, 2, 3):
        assert c.api(node, "GET", "sys/init").json() == {"initialized": False}
        assert c.api(node, "GET", "sys/health").status_code == 501
    # Init once, on node 1 (the role's run_once), 5 shares / threshold 3.
    init = c.api(1, "PUT", "sys/init", {"secret_shares": 5, "secret_threshold": 3})
    assert init.status_code == 200, init.text
    keys, root = init.json()["keys_base64"], init.json()["root_token"]
    # Node 1 is initialised but sealed: the others cannot get a join challenge yet (as in Vault).
    assert c.api(2, "GET", "sys/init").json() == {"initialized": False}
    refused = c.api(2, "POST", "sys/unseal", {"key": keys[0]})
    assert refused.status_code == 400 and refused.json() == {"errors": ["Vault is not initialized"]}
    assert c.unseal(1, keys[:3])["sealed"] is False
    # Now the joiners see an initialised leader: initialized true, sealed, the leader's threshold.
    for node in (2, 3):
        status = c.api(node, "GET", "sys/seal-status").json()
        assert (status["initialized"], status["sealed"], status["t"], status["n"]) == (True, True, 3, 5)
        assert c.api(node, "GET", "sys/init").json() == {"initialized": True}
        assert c.api(node, "GET", "sys/health").status_code == 503
    # A wrong key on a joiner is refused like on a single node; the right ones join it.
    wrong = c.unseal(3, [keys[0], keys[1]])
    assert wrong["progress"] == 2
    bad = c.api(3, "POST", "sys/unseal", {"key": "00" * 33})
    assert bad.status_code == 400
    assert bad.json() == {"errors": ["Error: failed to decrypt keys from storage: cipher: message authentication "
                                     "failed"]}
    assert c.api(3, "GET", "sys/seal-status").json()["sealed"] is True
    for node, shares in ((2, keys[1:4]), (3, keys[2:5])):
        assert c.unseal(node, shares)["sealed"] is False

    # Health: 200 on the active, 429 on the standbys (200 with standbyok=true).
    health = c.api(1, "GET", "sys/health")
    assert health.status_code == 200 and health.json()["standby"] is False
    for node in (2, 3):
        resp = c.api(node, "GET", "sys/health")
        assert resp.status_code == 429, resp.text
        assert resp.json()["standby"] is True and resp.json()["sealed"] is False
        assert resp.json()["cluster_id"] == health.json()["cluster_id"]
        assert c.api(node, "GET", "sys/health", params={"standbyok": "true"}).status_code == 200
    leader = c.api(1, "GET", "sys/leader").json()
    assert (leader["ha_enabled"], leader["is_self"]) == (True, True)
    assert leader["leader_address"] == "https://127.0.0.2:%d" % c.port
    for node in (2, 3):
        other = c.api(node, "GET", "sys/leader").json()
        assert (other["ha_enabled"], other["is_self"]) == (True, False)
        assert other["leader_address"] == leader["leader_address"]
        assert other["leader_cluster_address"] == "https://127.0.0.2:%d" % (c.port + 1)

    # `vault status` (the simulator's CLI) shows the HA rows.
    for node, mode in ((1, "active"), (3, "standby")):
        out = subprocess.run([sys.executable, "-m", "tests.simulators.vault", "status",
                              "-address=https://%s:%d" % (HOSTS[node - 1], c.port), "-ca-cert=%s" % c.ca],
                             cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
        assert out.returncode == 0, out.stderr
        rows = dict(re.match(r"^(.+?)\s{2,}(.*)$", line).groups() for line in out.stdout.splitlines()[2:])
        assert (rows["HA Enabled"], rows["HA Mode"]) == ("true", mode), out.stdout
    assert "Active Node Address" in out.stdout and "https://127.0.0.2:%d" % c.port in out.stdout

    # Raft configuration (token needed): three voters, node1 the leader.
    assert c.api(1, "GET", "sys/storage/raft/configuration").status_code == 403
    config = c.api(1, "GET", "sys/storage/raft/configuration", token=root)
    assert config.status_code == 200, config.text
    servers = {s["node_id"]: s for s in config.json()["data"]["config"]["servers"]}
    assert set(servers) == {"node1", "node2", "node3"}
    assert all(s["voter"] for s in servers.values())
    assert [n for n, s in servers.items() if s["leader"]] == ["node1"]
    assert servers["node3"]["address"] == "127.0.0.4:%d" % (c.port + 1)
    # ... also asked through a standby (forwarded)
    assert c.api(2, "GET", "sys/storage/raft/configuration", token=root).json()["data"] == config.json()["data"]

    # KV v2 through a standby: written on node 3, read on node 2 and node 1.
    assert c.api(3, "POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}}, token=root).status_code \
        == 204
    wrote = c.api(3, "POST", "kv/data/app", {"data": {"password": "s3cret"}}, token=root)
    assert wrote.status_code == 200, wrote.text
    for node in (2, 1):
        read = c.api(node, "GET", "kv/data/app", token=root)
        assert read.status_code == 200 and read.json()["data"]["data"] == {"password": "s3cret"}
    assert c.api(2, "GET", "kv/metadata/", token=root, params={"list": "true"}).json()["data"]["keys"] == ["app"]
    assert c.api(2, "GET", "kv/data/app").status_code == 403  # no token: the active's answer, relayed

    # A policy and a token made through the standbys work on the active (and vice versa).
    policy = 'path "kv/data/app" { capabilities = ["read"] }'
    assert c.api(2, "PUT", "sys/policies/acl/app-read", {"policy": policy}, token=root).status_code == 204
    made = c.api(3, "POST", "auth/token/create", {"policies": ["app-read"], "ttl": "1h"}, token=root)
    assert made.status_code == 200, made.text
    app_token = made.json()["auth"]["client_token"]
    assert c.api(1, "GET", "kv/data/app", token=app_token).status_code == 200
    assert c.api(1, "POST", "kv/data/app", {"data": {"x": "y"}}, token=app_token).status_code == 403
    assert c.api(2, "GET", "auth/token/lookup-self", token=app_token).json()["data"]["policies"] == [
        "app-read", "default"]

    # Restart node 2: sealed again, a wrong key refused, the right shares make it a standby again.
    c.stop(2)
    c.start(2)
    status = c.api(2, "GET", "sys/seal-status").json()
    assert (status["initialized"], status["sealed"]) == (True, True)
    assert c.api(2, "GET", "kv/data/app", token=root).status_code == 503
    c.unseal(2, [keys[4], keys[3]])
    # A wrong third share: its x coordinate (last byte) differs from both, so the shares combine, to a wrong key.
    taken = {base64.b64decode(keys[4])[-1], base64.b64decode(keys[3])[-1]}
    wrong_x = next(x for x in range(1, 256) if x not in taken)
    refused = c.api(2, "POST", "sys/unseal", {"key": "11" * 32 + "%02x" % wrong_x})
    assert refused.status_code == 400 and "cipher: message authentication failed" in refused.text, refused.text
    assert c.unseal(2, keys[:3])["sealed"] is False
    assert c.api(2, "GET", "sys/health").status_code == 429
    assert c.api(2, "GET", "kv/data/app", token=root).json()["data"]["data"] == {"password": "s3cret"}
    assert len(c.api(1, "GET", "sys/storage/raft/configuration", token=root).json()["data"]["config"]["servers"]) \
        == 3

    # Node 1 down: the standbys cannot forward (Vault's error for no active node), still answer health.
    c.stop(1)
    down = c.api(2, "GET", "kv/data/app", token=root)
    assert down.status_code == 500 and down.json() == {"errors": [NO_ACTIVE]}
    assert c.api(3, "POST", "kv/data/app", {"data": {"a": "b"}}, token=root).json() == {"errors": [NO_ACTIVE]}
    assert c.api(2, "GET", "sys/health").status_code == 429
    assert c.api(2, "GET", "sys/leader").json()["leader_address"] == ""
    # Node 1 back, sealed: still no active node; unsealed: forwarding works again.
    c.start(1)
    assert c.api(1, "GET", "sys/health").status_code == 503
    assert c.api(3, "GET", "kv/data/app", token=root).json() == {"errors": [NO_ACTIVE]}
    assert c.unseal(1, keys[1:4])["sealed"] is False
    for node in (2, 3):
        again = c.api(node, "GET", "kv/data/app", token=root)
        assert again.status_code == 200 and again.json()["data"]["data"] == {"password": "s3cret"}
    assert time.monotonic() - started < 60
