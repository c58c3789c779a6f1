"""The Vault simulator's HA side (ha.py, config.py's retry_join), in process on 127.0.0.1.

Two or three VaultApps with HANodes behind SimServers (plain HTTP unless a test
needs TLS): forwarding keeps method, path, query and token; a standby's own
endpoints; sys/seal on a standby; the active sealed; the leader's CA and the
system-trust-store fallback. The three-process HTTPS cluster is
tests/integration/vault/test_sim_ha.py.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import requests

from tests.simulators.agentconfig import ConfigError
from tests.simulators.base import SimServer
from tests.simulators.vault import config as vault_config
from tests.simulators.vault.app import VaultApp
from tests.simulators.vault.ha import MEMBER_FILE, NO_ACTIVE, HANode
from tests.simulators.vault.testcerts import write_pki


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "vault.hcl"
    path.write_text(text)
    return str(path)


BASE = '''api_addr = "http://127.0.0.1:8200"
cluster_addr = "https://127.0.0.1:8201"
listener "tcp" {
  address = "127.0.0.1:8200"
  tls_disable = true
}
'''


def test_config_reads_retry_join_node_id_and_cluster_addr(tmp_path):
    cfg = vault_config.read(_write(tmp_path, BASE + '''storage "raft" {
  path = "%s"
  node_id = "vault-1"
  retry_join {
    leader_api_addr = "https://127.0.0.2:8200"
    leader_ca_cert_file = "/etc/vault.d/tls/ca.pem"
  }
  retry_join {
    leader_api_addr = "https://127.0.0.3:8200"
    leader_tls_servername = "vault.example"
  }
}
''' % tmp_path))
    assert cfg.node_id == "vault-1" and cfg.cluster_addr == "https://127.0.0.1:8201"
    assert cfg.retry_join == [
        {"leader_api_addr": "https://127.0.0.2:8200", "leader_ca_cert_file": "/etc/vault.d/tls/ca.pem"},
        {"leader_api_addr": "https://127.0.0.3:8200", "leader_tls_servername": "vault.example"}]
    assert cfg.warnings == []


@pytest.mark.parametrize(("block", "message"), [
    ('retry_join {\n leader_ca_cert_file = "/x"\n }', "retry_join requires either leader_api_addr or auto_join"),
    ('retry_join {\n auto_join = "provider=aws tag_key=vault"\n }', "auto_join (cloud auto-join) is a real Vault"),
])
def test_config_refuses_retry_join_it_cannot_follow(tmp_path, block, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        vault_config.read(_write(tmp_path, BASE + 'storage "raft" {\n path = "%s"\n %s\n}\n' % (tmp_path, block)))


def test_config_warns_on_an_unknown_retry_join_key(tmp_path):
    cfg = vault_config.read(_write(tmp_path, BASE + 'storage "raft" {\n path = "%s"\n retry_join {\n'
                                   ' leader_api_addr = "http://127.0.0.2:8200"\n leader_colour = "red"\n }\n}\n'
                                   % tmp_path))
    assert cfg.warnings == ["WARNING: unknown or unsupported field retry_join.leader_colour found in "
                            "configuration at %s" % (tmp_path / "vault.hcl")]


class Node:
    def __init__(self, tmp: Path, name: str, ssl_context: ssl.SSLContext | None = None):
        self.data = tmp / name
        self.app = VaultApp(data_dir=str(self.data))
        self.app.storage_type = "raft"
        self.server = SimServer(self.app, ssl_context=ssl_context).start()
        self.name = name
        self.verify: str | bool = True

    def attach(self, leaders: list[Node], **extra) -> None:
        self.app.ha = HANode(self.app, str(self.data), self.name, self.server.address,
                             "https://127.0.0.1:%d" % (int(self.server.address.rsplit(":", 1)[1]) + 1),
                             [{"leader_api_addr": n.server.address, **extra} for n in leaders])

    def api(self, method: str, path: str, body=None, token: str | None = None, headers: dict | None = None,
            **kw) -> requests.Response:
        headers = {**({"X-Vault-Token": token} if token else {}), **(headers or {})}
        return requests.request(method, "%s/v1/%s" % (self.server.address, path), json=body, headers=headers,
                                timeout=10, verify=self.verify, **kw)


@pytest.fixture
def pair(tmp_path):
    """An active node (initialised, unsealed) and a joined, unsealed standby."""
    active, standby = Node(tmp_path, "n1"), Node(tmp_path, "n2")
    active.attach([standby])
    standby.attach([active])
    init = active.api("POST", "sys/init", {"secret_shares": 3, "secret_threshold": 2}).json()
    keys = init["keys"]
    for key in keys[:2]:
        active.api("POST", "sys/unseal", {"key": key})
    for key in keys[1:]:
        status = standby.api("POST", "sys/unseal", {"key": key}).json()
    assert status["sealed"] is False
    try:
        yield active, standby, keys, init["root_token"]
    finally:
        active.server.stop()
        standby.server.stop()


def test_forwarding_keeps_method_query_body_and_token(pair):
    active, standby, _keys, root = pair
    assert standby.api("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}}, token=root).ok
    for value in ("one", "two"):
        assert standby.api("POST", "kv/data/a", {"data": {"v": value}}, token=root).ok
    first = standby.api("GET", "kv/data/a", token=root, params={"version": "1"})
    assert first.json()["data"]["data"] == {"v": "one"}
    assert standby.api("LIST", "kv/metadata/", token=root).json()["data"]["keys"] == ["a"]
    patched = standby.api("PATCH", "kv/data/a", {"data": {"w": "x"}}, token=root,
                          headers={"Content-Type": "application/merge-patch+json"})
    assert patched.ok, patched.text
    assert active.api("GET", "kv/data/a", token=root).json()["data"]["data"] == {"v": "two", "w": "x"}
    assert active.server.count("GET", "/v1/kv/data/a") == 2  # one asked on the standby (forwarded), one here
    assert standby.api("GET", "kv/data/a", token="hvs.nope").json() == {"errors": ["permission denied"]}


def test_standby_answers_health_leader_and_seal_status_itself(pair):
    active, standby, _keys, _root = pair
    active.server.reset_log()
    head = standby.api("HEAD", "sys/health")
    assert head.status_code == 429 and head.content == b""
    assert standby.api("GET", "sys/health", params={"standbycode": "299"}).status_code == 299
    health = standby.api("GET", "sys/health").json()
    assert health["standby"] is True and health["ha_connection_healthy"] is True
    status = standby.api("GET", "sys/seal-status").json()
    assert (status["initialized"], status["sealed"], status["t"], status["n"]) == (True, False, 2, 3)
    assert status["cluster_id"] == active.api("GET", "sys/seal-status").json()["cluster_id"]
    assert standby.api("GET", "sys/leader").json()["leader_address"] == active.server.address
    assert active.server.count(None, "/v1/sys/seal-status") == 1  # only the direct ask above
    assert active.server.count(None, "/v1/sys/health") == 0


def test_membership_is_kept_in_the_data_dir(pair, tmp_path):
    _active, standby, _keys, _root = pair
    member = (standby.data / MEMBER_FILE).read_text()
    assert '"node_id": "n2"' in member and "keys" not in member


def test_sys_seal_on_a_standby_seals_the_standby_only(pair):
    active, standby, keys, root = pair
    made = active.api("POST", "auth/token/create", {"policies": ["default"]}, token=root).json()
    assert standby.api("POST", "sys/seal", token=made["auth"]["client_token"]).status_code == 403
    assert standby.api("POST", "sys/seal", token=root).status_code == 204
    assert standby.api("GET", "sys/seal-status").json()["sealed"] is True
    assert standby.api("GET", "sys/mounts", token=root).json() == {"errors": ["Vault is sealed"]}
    assert active.api("GET", "sys/health").status_code == 200
    for key in keys[:2]:
        standby.api("POST", "sys/unseal", {"key": key})
    assert standby.api("GET", "sys/health").status_code == 429


def test_a_sealed_active_means_no_active_node(pair):
    active, standby, keys, root = pair
    assert active.api("POST", "sys/seal", token=root).status_code == 204
    resp = standby.api("GET", "sys/mounts", token=root)
    assert resp.status_code == 500 and resp.json() == {"errors": [NO_ACTIVE]}
    assert standby.api("GET", "sys/health").json()["ha_connection_healthy"] is False
    for key in keys[:2]:
        active.api("POST", "sys/unseal", {"key": key})
    assert standby.api("GET", "sys/mounts", token=root).ok


def test_a_single_raft_node_without_retry_join_is_not_ha(tmp_path):
    node = Node(tmp_path, "solo")
    node.attach([])
    try:
        keys = node.api("POST", "sys/init", {"secret_shares": 1, "secret_threshold": 1}).json()["keys"]
        node.api("POST", "sys/unseal", {"key": keys[0]})
        leader = node.api("GET", "sys/leader").json()
        assert (leader["ha_enabled"], leader["is_self"], leader["leader_address"]) == (False, False, "")
    finally:
        node.server.stop()


def _tls_server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("trust", ["leader_ca_cert_file", "system store fallback", "nothing"])
def test_join_verifies_the_leader_with_its_ca_or_the_system_store(tmp_path, monkeypatch, trust):
    ca, cert, key = write_pki(tmp_path, ["127.0.0.1"])
    other_ca, _cert, _key = write_pki(tmp_path, ["127.0.0.1"], name="other")
    active = Node(tmp_path, "n1", _tls_server_context(cert, key))
    active.verify = str(ca)
    active.attach([])
    joiner = Node(tmp_path, "n2")
    # The system trust store of OpenSSL's default paths (SSL_CERT_FILE) holds the right CA only in the fallback case.
    monkeypatch.setenv("SSL_CERT_FILE", str(ca if trust == "system store fallback" else other_ca))
    joiner.attach([active], leader_ca_cert_file=str(ca if trust == "leader_ca_cert_file" else other_ca))
    try:
        keys = active.api("POST", "sys/init", {"secret_shares": 1, "secret_threshold": 1}).json()["keys"]
        active.api("POST", "sys/unseal", {"key": keys[0]})
        status = joiner.api("GET", "sys/seal-status").json()
        if trust == "nothing":
            assert status["initialized"] is False  # the leader cannot be verified: no join challenge
            return
        assert status["initialized"] is True
        assert joiner.api("POST", "sys/unseal", {"key": keys[0]}).json()["sealed"] is False
        assert joiner.api("GET", "sys/health").status_code == 429
    finally:
        active.server.stop()
        joiner.server.stop()


def test_a_non_loopback_listener_needs_the_explicit_opt_in(tmp_path, monkeypatch, capsys):
    from tests.simulators.vault.__main__ import ALLOW_NON_LOOPBACK, main

    monkeypatch.delenv(ALLOW_NON_LOOPBACK, raising=False)
    path = _write(tmp_path, BASE.replace('address = "127.0.0.1:8200"', 'address = "0.0.0.0:8200"')
                  + 'storage "raft" {\n path = "%s"\n}\n' % tmp_path)
    assert main(["server", "-config=%s" % path]) == 1
    assert "loopback only, not 0.0.0.0 (set VAULT_SIM_ALLOW_NON_LOOPBACK=1" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["active", "standby"])
def test_shares_with_the_same_x_coordinate_are_refused_and_reset_progress(pair, which):
    """Vault's shamir.Combine refuses two parts with one x coordinate: an ErrInvalidKey, so a 400."""
    active, standby, keys, root = pair
    node = active if which == "active" else standby
    assert node.api("POST", "sys/seal", token=root).status_code == 204
    first = bytes.fromhex(keys[0])
    twin = bytes(b ^ 0x5A for b in first[:-1]) + first[-1:]  # other bytes, same x coordinate (last byte)
    assert node.api("POST", "sys/unseal", {"key": first.hex()}).json()["progress"] == 1
    refused = node.api("POST", "sys/unseal", {"key": twin.hex()})
    assert refused.status_code == 400
    assert refused.json() == {"errors": ["failed to compute combined key: duplicate part detected"]}
    status = node.api("GET", "sys/seal-status").json()
    assert (status["sealed"], status["progress"], status["nonce"]) == (True, 0, "")
    for key in keys[:2]:
        node.api("POST", "sys/unseal", {"key": key})
    assert node.api("GET", "sys/seal-status").json()["sealed"] is False
