"""Behaviour of the Vault simulator over HTTP, as Vault's API docs describe it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.simulators.base import App, Response, SimServer
from tests.simulators.vault import start

DENIED = {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}


def call(sim, method, path, body=None, token="root", **kw):
    headers = {"X-Vault-Token": token} if token else {}
    return requests.request(method, "%s/v1/%s" % (sim.address, path), json=body, headers=headers, timeout=10, **kw)


def ok(sim, method, path, body=None, token="root", **kw):
    resp = call(sim, method, path, body, token, **kw)
    assert resp.status_code in (200, 204), resp.text
    return resp.json() if resp.status_code == 200 else None


# ---------------------------------------------------------------- seal, init, health, persistence
def test_init_unseal_restart_sealed_and_health_codes(tmp_path):
    data_dir = str(tmp_path / "data")
    sim = start(data_dir)
    try:
        assert call(sim, "GET", "sys/health", token=None).status_code == 501
        assert call(sim, "GET", "sys/health?uninitcode=200", token=None).status_code == 200
        bad = call(sim, "POST", "sys/init", {"secret_shares": 3, "secret_threshold": 5}, token=None)
        assert bad.status_code == 400 and "threshold" in bad.json()["errors"][0]
        keys = ok(sim, "POST", "sys/init", {"secret_shares": 5, "secret_threshold": 3}, token=None)
        assert len(keys["keys"]) == 5 and len(keys["keys_base64"]) == 5 and keys["root_token"].startswith("hvs.")
        again = call(sim, "POST", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, token=None)
        assert again.status_code == 400 and again.json() == {"errors": ["Vault is already initialized"]}
        assert call(sim, "GET", "sys/health", token=None).status_code == 503
        assert call(sim, "HEAD", "sys/health", token=None).status_code == 503
        assert call(sim, "GET", "kv/data/x", token=keys["root_token"]).json() == {"errors": ["Vault is sealed"]}
        status = ok(sim, "POST", "sys/unseal", {"key": keys["keys"][0]}, token=None)
        assert status["sealed"] and status["progress"] == 1 and status["t"] == 3 and status["n"] == 5
        assert status["nonce"]
        reset = ok(sim, "POST", "sys/unseal", {"reset": True}, token=None)
        assert reset["progress"] == 0
        for share in (keys["keys"][4], keys["keys_base64"][1], keys["keys"][2]):
            status = ok(sim, "POST", "sys/unseal", {"key": share}, token=None)
        assert status["sealed"] is False and status["progress"] == 0
        health = call(sim, "GET", "sys/health", token=None)
        assert health.status_code == 200 and health.json()["version"].startswith("1.18.")
        root = keys["root_token"]
        ok(sim, "POST", "sys/mounts/kv", {"type": "kv-v2"}, token=root)
        ok(sim, "POST", "kv/data/app", {"data": {"password": "persisted-secret"}}, token=root)
    finally:
        sim.stop()
    raw = (Path(data_dir) / "vault-sim.json").read_text()
    assert "persisted-secret" not in raw and root not in raw  # storage is encrypted by the barrier key
    sim = start(data_dir)  # a restart: sealed again, as Vault is
    try:
        assert call(sim, "GET", "sys/seal-status", token=None).json()["sealed"] is True
        assert call(sim, "GET", "kv/data/app", token=root).status_code == 503
        # wrong shares (from another Vault) fail and reset the progress
        other = start(str(tmp_path / "other"))
        other_keys = ok(other, "POST", "sys/init", {"secret_shares": 3, "secret_threshold": 2}, token=None)
        other.stop()
        ok(sim, "POST", "sys/unseal", {"key": other_keys["keys"][0]}, token=None)
        wrong = call(sim, "POST", "sys/unseal", {"key": other_keys["keys"][1]}, token=None)
        wrong2 = call(sim, "POST", "sys/unseal", {"key": other_keys["keys"][2]}, token=None)
        assert wrong.status_code == 200 and wrong.json()["progress"] == 2
        assert wrong2.status_code == 400 and "message authentication failed" in wrong2.json()["errors"][0]
        assert call(sim, "POST", "sys/unseal", {"key": "not hex!"}, token=None).status_code == 400
        for share in keys["keys"][:3]:
            ok(sim, "POST", "sys/unseal", {"key": share}, token=None)
        assert ok(sim, "GET", "kv/data/app", token=root)["data"]["data"] == {"password": "persisted-secret"}
        ok(sim, "POST", "sys/seal", token=root)
        assert call(sim, "GET", "sys/health", token=None).status_code == 503
    finally:
        sim.stop()


# ---------------------------------------------------------------- ACL
POLICY = """
path "kv/data/apps/+/config" { capabilities = ["read"] }
path "kv/data/apps/*" { capabilities = ["create", "update", "read"] }
path "kv/data/apps/secret" { capabilities = ["deny"] }
path "kv/metadata/*" { capabilities = ["list"] }
"""


def test_policies_enforce_paths_globs_plus_and_deny(dev):
    ok(dev, "POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
    ok(dev, "POST", "sys/policies/acl/apps", {"policy": POLICY})
    assert ok(dev, "GET", "sys/policies/acl/apps")["data"] == {"name": "apps", "policy": POLICY}
    bad = call(dev, "POST", "sys/policies/acl/bad", {"policy": 'path "x" { capabilities = ["reed"] }'})
    assert bad.status_code == 400 and "invalid capability" in bad.json()["errors"][0]
    tok = ok(dev, "POST", "auth/token/create", {"policies": ["apps"], "ttl": "10m"})["auth"]["client_token"]
    ok(dev, "POST", "kv/data/apps/a/config", {"data": {"k": "v"}})
    # "+" beats "*" (later wildcard wins): read only on apps/<x>/config
    assert call(dev, "GET", "kv/data/apps/a/config", token=tok).status_code == 200
    denied = call(dev, "POST", "kv/data/apps/a/config", {"data": {"k": "w"}}, token=tok)
    assert denied.status_code == 403 and denied.json() == DENIED
    assert call(dev, "POST", "kv/data/apps/b", {"data": {"k": "v"}}, token=tok).status_code == 200
    assert call(dev, "POST", "kv/data/apps/secret", {"data": {"k": "v"}}, token=tok).json() == DENIED
    assert call(dev, "GET", "kv/data/other", token=tok).status_code == 403
    assert call(dev, "GET", "kv/metadata/apps", token=tok, params={"list": "true"}).status_code == 200
    assert call(dev, "DELETE", "kv/metadata/apps/b", token=tok).status_code == 403
    assert call(dev, "POST", "sys/policies/acl/x", {"policy": POLICY}, token=tok).status_code == 403
    # the default policy: lookup-self yes; sealing needs sudo
    assert ok(dev, "GET", "auth/token/lookup-self", token=tok)["data"]["policies"] == ["apps", "default"]
    assert call(dev, "POST", "sys/seal", token=tok).status_code == 403
    # the mount lookup the CLI (and vault_kv) uses is open to tokens that can use the mount
    assert ok(dev, "GET", "sys/internal/ui/mounts/kv", token=tok)["data"]["options"] == {"version": "2"}
    assert call(dev, "GET", "sys/internal/ui/mounts/secret", token=tok).status_code == 403
    assert call(dev, "GET", "kv/data/apps/b", token="hvs.bogus").json() == {"errors": ["permission denied"]}
    assert call(dev, "DELETE", "sys/policies/acl/default").status_code == 400


def test_tokens_create_subset_lookup_revoke_cascade(dev):
    ok(dev, "POST", "sys/policies/acl/p1", {"policy": 'path "auth/token/create" { capabilities = ["update"] }'})
    parent = ok(dev, "POST", "auth/token/create", {"policies": ["p1"], "display_name": "ci"})["auth"]
    assert parent["policies"] == ["default", "p1"] and parent["lease_duration"] == 768 * 3600
    assert parent["token_type"] == "service" and parent["orphan"] is False
    bad = call(dev, "POST", "auth/token/create", {"policies": ["root"]}, token=parent["client_token"])
    assert bad.status_code == 400
    bad = call(dev, "POST", "auth/token/create", {"policies": ["other"]}, token=parent["client_token"])
    assert bad.json() == {"errors": ["child policies must be subset of parent"]}
    child = ok(dev, "POST", "auth/token/create", {"ttl": "1h"}, token=parent["client_token"])["auth"]
    looked = ok(dev, "POST", "auth/token/lookup", {"token": child["client_token"]})["data"]
    assert looked["ttl"] <= 3600 and looked["display_name"] == "token" and looked["policies"] == ["default", "p1"]
    ok(dev, "POST", "auth/token/revoke", {"token": parent["client_token"]})
    assert call(dev, "GET", "auth/token/lookup-self", token=child["client_token"]).status_code == 403
    once = ok(dev, "POST", "auth/token/create", {"num_uses": 1})["auth"]["client_token"]
    assert call(dev, "GET", "auth/token/lookup-self", token=once).status_code == 200
    assert call(dev, "GET", "auth/token/lookup-self", token=once).status_code == 403


# ---------------------------------------------------------------- KV
def test_kv2_versions_cas_delete_undelete_destroy_metadata_patch(dev):
    p = "secret/data/app"
    assert ok(dev, "POST", p, {"data": {"a": "1"}, "options": {"cas": 0}})["data"]["version"] == 1
    mismatch = call(dev, "POST", p, {"data": {"a": "2"}, "options": {"cas": 0}})
    assert mismatch.status_code == 400
    assert mismatch.json() == {"errors": ["check-and-set parameter did not match the current version"]}
    ok(dev, "POST", p, {"data": {"a": "2", "b": "x"}})
    patch = requests.patch(dev.address + "/v1/" + p, data=json.dumps({"data": {"b": None, "c": "3"}}),
                           headers={"X-Vault-Token": "root", "Content-Type": "application/merge-patch+json"},
                           timeout=5)
    assert patch.status_code == 200 and patch.json()["data"]["version"] == 3
    assert ok(dev, "GET", p)["data"]["data"] == {"a": "2", "c": "3"}
    assert requests.patch(dev.address + "/v1/" + p, json={"data": {}}, headers={"X-Vault-Token": "root"},
                          timeout=5).status_code == 415
    ok(dev, "DELETE", p)
    gone = call(dev, "GET", p)
    assert gone.status_code == 404 and gone.json()["data"]["data"] is None
    assert gone.json()["data"]["metadata"]["deletion_time"]
    ok(dev, "POST", "secret/undelete/app", {"versions": [3]})
    ok(dev, "POST", "secret/destroy/app", {"versions": [1]})
    meta = ok(dev, "GET", "secret/metadata/app")["data"]
    assert meta["current_version"] == 3 and meta["versions"]["1"]["destroyed"] is True
    assert meta["versions"]["3"]["deletion_time"] == ""
    assert call(dev, "GET", p, params={"version": 1}).status_code == 404
    ok(dev, "POST", "secret/metadata/app", {"max_versions": 2, "cas_required": True,
                                            "custom_metadata": {"owner": "me"}})
    meta = ok(dev, "GET", "secret/metadata/app")["data"]
    assert sorted(meta["versions"]) == ["2", "3"] and meta["oldest_version"] == 2
    assert call(dev, "POST", p, {"data": {"a": "9"}}).json() == {
        "errors": ["check-and-set parameter required for this call"]}
    assert ok(dev, "GET", p)["data"]["metadata"]["custom_metadata"] == {"owner": "me"}
    assert ok(dev, "GET", "secret/metadata/", params={"list": "true"})["data"]["keys"] == ["app"]
    ok(dev, "DELETE", "secret/metadata/app")
    assert call(dev, "GET", "secret/metadata/app").status_code == 404
    wrong_api = call(dev, "GET", "secret/app")
    assert wrong_api.status_code == 404 and "versioned K/V" in wrong_api.json()["errors"][0]


def test_kv1_and_mounts(dev):
    ok(dev, "POST", "sys/mounts/legacy", {"type": "kv"})
    assert ok(dev, "GET", "sys/mounts")["legacy/"]["options"] == {"version": "1"}
    used = call(dev, "POST", "sys/mounts/legacy", {"type": "kv"})
    assert used.json() == {"errors": ["path is already in use at legacy/"]}
    assert call(dev, "POST", "sys/mounts/x", {"type": "nosuch"}).status_code == 400
    ok(dev, "POST", "legacy/a/b", {"k": "v"})
    assert ok(dev, "GET", "legacy/a/b")["data"] == {"k": "v"}
    assert ok(dev, "GET", "legacy/a", params={"list": "true"})["data"]["keys"] == ["b"]
    ok(dev, "DELETE", "legacy/a/b")
    assert call(dev, "GET", "legacy/a/b").json() == {"errors": []}
    ok(dev, "POST", "sys/mounts/legacy/tune", {"options": {"version": "2"}})
    assert ok(dev, "GET", "sys/internal/ui/mounts/legacy")["data"]["options"]["version"] == "2"


# ---------------------------------------------------------------- auth methods
def _jwks_server(key):
    from jwt.algorithms import RSAAlgorithm

    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    app = App()
    app.add_route("GET", r"/.well-known/jwks.json", lambda req: Response(200, {"keys": [jwk]}))
    return SimServer(app).start()


def test_jwt_login_with_jwks_url_bound_claims_and_expiry(dev):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = _jwks_server(key)
    try:
        ok(dev, "POST", "sys/auth/jwt", {"type": "jwt"})
        assert call(dev, "POST", "auth/jwt/config", {}).status_code == 400
        remote = call(dev, "POST", "auth/jwt/config", {"jwks_url": "https://example.org/jwks"})
        assert remote.status_code == 400  # the simulator never leaves loopback
        ok(dev, "POST", "auth/jwt/config", {"jwks_url": jwks.address + "/.well-known/jwks.json"})
        assert call(dev, "POST", "auth/jwt/role/web", {"role_type": "jwt"}).json() == {
            "errors": ["a user claim must be defined on the role"]}
        ok(dev, "POST", "auth/jwt/role/web", {"role_type": "jwt", "user_claim": "/nomad_job_id",
                                              "user_claim_json_pointer": True, "bound_audiences": ["vault.io"],
                                              "bound_claims": {"nomad_job_id": "web"}, "token_policies": ["web"],
                                              "claim_mappings": {"nomad_task": "task"}})
        now = int(time.time())

        def sign(claims, signer=key):
            return jwt.encode({"aud": "vault.io", "iat": now, "exp": now + 60, **claims}, signer, algorithm="RS256",
                              headers={"kid": "k1"})

        auth = ok(dev, "POST", "auth/jwt/login", {"role": "web", "jwt": sign({"nomad_job_id": "web",
                                                                              "nomad_task": "t"})}, token=None)
        assert auth["auth"]["policies"] == ["default", "web"] and auth["auth"]["metadata"] == {"role": "web",
                                                                                               "task": "t"}
        other = call(dev, "POST", "auth/jwt/login", {"role": "web", "jwt": sign({"nomad_job_id": "db"})}, token=None)
        assert other.status_code == 400 and "does not match any associated bound claim values" in other.text
        expired = sign({"nomad_job_id": "web", "exp": now - 3600})
        assert call(dev, "POST", "auth/jwt/login", {"role": "web", "jwt": expired}, token=None).status_code == 400
        forged = sign({"nomad_job_id": "web"}, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        assert "signature" in call(dev, "POST", "auth/jwt/login", {"role": "web", "jwt": forged}, token=None).text
        missing = call(dev, "POST", "auth/jwt/login", {"role": "nope", "jwt": expired}, token=None)
        assert missing.json() == {"errors": ['role "nope" could not be found']}
    finally:
        jwks.stop()


def test_approle_login_and_secret_id_uses(dev):
    ok(dev, "POST", "sys/auth/approle", {"type": "approle"})
    ok(dev, "POST", "auth/approle/role/backup", {"token_policies": "backup,extra", "secret_id_num_uses": 1})
    role_id = ok(dev, "GET", "auth/approle/role/backup/role-id")["data"]["role_id"]
    secret = ok(dev, "POST", "auth/approle/role/backup/secret-id")["data"]
    assert secret["secret_id_num_uses"] == 1 and secret["secret_id_accessor"]
    login = {"role_id": role_id, "secret_id": secret["secret_id"]}
    auth = ok(dev, "POST", "auth/approle/login", login, token=None)["auth"]
    assert auth["policies"] == ["backup", "default", "extra"] and auth["metadata"] == {"role_name": "backup"}
    assert call(dev, "POST", "auth/approle/login", login, token=None).json() == {
        "errors": ["invalid role or secret ID"]}


def test_fault_knob(dev):
    requests.post(dev.address + "/_sim/fault", json={"status": 503, "count": 2, "path_prefix": "/v1/secret/"},
                  timeout=5)
    assert call(dev, "GET", "secret/data/x").status_code == 503
    assert call(dev, "GET", "sys/mounts").status_code == 200
    assert call(dev, "GET", "secret/data/x").status_code == 503
    assert call(dev, "GET", "secret/data/x").status_code == 404


# ---------------------------------------------------------------- the vault-like CLI
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(addr):
    for _attempt in range(100):
        try:
            return requests.get(addr + "/v1/sys/seal-status", timeout=1).json()
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError("simulator did not start at %s" % addr)


def _spawn(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "tests.simulators.vault", "server", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_cli_config_file_mode_persists_and_restarts_sealed(tmp_path):
    repo = str(Path(__file__).resolve().parents[4])
    port = _free_port()
    config = tmp_path / "vault.hcl"
    config.write_text('storage "file" {\n  path = "%s"\n}\nlistener "tcp" {\n  address = "127.0.0.1:%d"\n'
                      '  tls_disable = true\n}\ndisable_mlock = true\nui = false\n' % (tmp_path / "data", port))
    addr = "http://127.0.0.1:%d" % port
    proc = _spawn(["-config=%s" % config], repo)
    try:
        status = _wait(addr)
        assert status["initialized"] is False and status["sealed"] is True
        keys = requests.post(addr + "/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=5).json()
        requests.post(addr + "/v1/sys/unseal", json={"key": keys["keys"][0]}, timeout=5).raise_for_status()
        hdr = {"X-Vault-Token": keys["root_token"]}
        requests.post(addr + "/v1/sys/mounts/kv", json={"type": "kv-v2"}, headers=hdr, timeout=5).raise_for_status()
        requests.post(addr + "/v1/kv/data/a", json={"data": {"x": "1"}}, headers=hdr, timeout=5).raise_for_status()
    finally:
        _stop(proc)
    proc = _spawn(["-config", str(config)], repo)
    try:
        assert _wait(addr)["sealed"] is True
        requests.post(addr + "/v1/sys/unseal", json={"key": keys["keys_base64"][0]}, timeout=5).raise_for_status()
        got = requests.get(addr + "/v1/kv/data/a", headers=hdr, timeout=5).json()
        assert got["data"]["data"] == {"x": "1"}
    finally:
        _stop(proc)


def test_cli_dev_mode_prints_root_token_and_logs_requests(tmp_path):
    repo = str(Path(__file__).resolve().parents[4])
    port = _free_port()
    log = tmp_path / "requests.jsonl"
    proc = _spawn(["-dev", "-dev-root-token-id=devroot", "-dev-listen-address=127.0.0.1:%d" % port,
                   "-log-requests", str(log)], repo)
    addr = "http://127.0.0.1:%d" % port
    try:
        assert _wait(addr)["sealed"] is False
        r = requests.get(addr + "/v1/secret/data/none", headers={"X-Vault-Token": "devroot"}, timeout=5)
        assert r.status_code == 404
    finally:
        _stop(proc)
    out = proc.stdout.read()
    assert "Root Token: devroot" in out and "Unseal Key: " in out
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["method"], e["path"], e["status"]) for e in lines][-1] == ("GET", "/v1/secret/data/none", 404)
    assert os.path.exists(log)


def test_cli_refuses_non_loopback_and_tls(tmp_path):
    repo = str(Path(__file__).resolve().parents[4])
    cfg = tmp_path / "tls.hcl"
    cfg.write_text('storage "file" { path = "%s" }\nlistener "tcp" { address = "127.0.0.1:1" }\n' % tmp_path)
    proc = _spawn(["-config=%s" % cfg], repo)
    assert proc.wait(timeout=20) != 0 and "tls_disable" in proc.stdout.read()
    proc = _spawn(["-dev", "-dev-listen-address=0.0.0.0:8200"], repo)
    assert proc.wait(timeout=20) != 0


@pytest.mark.parametrize("shares,threshold", [(1, 1), (3, 2), (5, 5)])
def test_init_share_layouts_unseal(tmp_path, shares, threshold):
    sim = start(str(tmp_path))
    try:
        keys = ok(sim, "POST", "sys/init", {"secret_shares": shares, "secret_threshold": threshold}, token=None)
        for share in keys["keys"][-threshold:]:
            status = ok(sim, "POST", "sys/unseal", {"key": share}, token=None)
        assert status["sealed"] is False
    finally:
        sim.stop()


def test_bin_vault_wrapper_runs_the_simulator():
    repo = Path(__file__).resolve().parents[4]
    out = subprocess.run([str(repo / "tests/simulators/vault/bin/vault"), "version"], capture_output=True, text=True,
                         env=dict(os.environ, VAULT_SIM_PYTHON=sys.executable), timeout=30, check=False)
    assert out.returncode == 0 and out.stdout.startswith("Vault v1.18.")
