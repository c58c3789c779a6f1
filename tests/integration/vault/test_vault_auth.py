"""Auth methods and the job naming rule, end to end.

The vault_job filter's policy and JWT role are written to Vault as the vault
role will write them; a Nomad-like workload identity (a JWT with
``nomad_job_id``) then logs in through vault_kv and may read its own secret and
nothing else. AppRole gets the same policy.
"""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from ansible_collections.selfhost.homelab.plugins.filter.vault_job import vault_job
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def kv(mount, path, **options):
    return {"selfhost.homelab.vault_kv": {"mount": mount, "path": path, **options}}


@pytest.fixture(scope="module")
def job_setup(vault, kv2):
    """A job's secret, its policy and JWT role from the filter, a JWT mount and an AppRole mount."""
    job = "it-job-" + uuid.uuid4().hex[:6]
    spec = vault_job(job, mount=kv2, fields=["db_password"])
    vault.ok("POST", "%s/data/%s" % (kv2, job), {"data": {"db_password": "pw-" + job}})
    vault.ok("POST", "%s/data/%s-other" % (kv2, job), {"data": {"x": "other job's secret"}})
    vault.ok("POST", "sys/policies/acl/%s" % spec["policy_name"], {"policy": spec["policy"]})

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    jwt_mount = "it-jwt-" + uuid.uuid4().hex[:6]
    vault.ok("POST", "sys/auth/%s" % jwt_mount, {"type": "jwt"})
    vault.ok("POST", "auth/%s/config" % jwt_mount, {"jwt_validation_pubkeys": [pem],
                                                    "jwt_supported_algs": ["RS256"]})
    vault.ok("POST", "auth/%s/role/%s" % (jwt_mount, spec["jwt_role_name"]), spec["jwt_role"])

    approle_mount = "it-approle-" + uuid.uuid4().hex[:6]
    vault.ok("POST", "sys/auth/%s" % approle_mount, {"type": "approle"})
    vault.ok("POST", "auth/%s/role/%s" % (approle_mount, job), {"token_policies": [job], "token_ttl": "10m"})
    role_id = vault.ok("GET", "auth/%s/role/%s/role-id" % (approle_mount, job))["data"]["role_id"]
    secret_id = vault.ok("POST", "auth/%s/role/%s/secret-id" % (approle_mount, job))["data"]["secret_id"]

    def sign(job_id, audience="vault.io"):
        now = int(time.time())
        claims = {"nomad_job_id": job_id, "nomad_namespace": "default", "nomad_task": "web",
                  "sub": "global:default:%s:web:web" % job_id, "aud": audience, "iat": now, "nbf": now,
                  "exp": now + 300}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "it"})

    yield {"job": job, "spec": spec, "jwt_mount": jwt_mount, "sign": sign, "approle_mount": approle_mount,
           "role_id": role_id, "secret_id": secret_id}
    vault.api("DELETE", "sys/auth/%s" % jwt_mount)
    vault.api("DELETE", "sys/auth/%s" % approle_mount)
    vault.api("DELETE", "sys/policies/acl/%s" % job)


def test_jwt_workload_identity_reads_only_its_own_secret(vault, kv2, job_setup, play):
    s = job_setup
    auth = {"auth_method": "jwt", "auth_mount_point": s["jwt_mount"], "jwt_role": s["spec"]["jwt_role_name"]}
    res = play([
        {"name": "read own", **kv(kv2, s["spec"]["kv_path"], state="read", engine_version="2",
                                  jwt=s["sign"](s["job"]), **auth)},
        {"name": "read other", **kv(kv2, s["job"] + "-other", state="read", engine_version="2",
                                    jwt=s["sign"](s["job"]), **auth), "ignore_errors": True},
        {"name": "write own", **kv(kv2, s["job"], data={"db_password": "x"}, engine_version="2",
                                   jwt=s["sign"](s["job"]), **auth), "ignore_errors": True},
        {"name": "other job's identity", **kv(kv2, s["job"], state="read", engine_version="2",
                                              jwt=s["sign"](s["job"] + "-x"), **auth), "ignore_errors": True},
        {"name": "wrong audience", **kv(kv2, s["job"], state="read", engine_version="2",
                                        jwt=s["sign"](s["job"], audience="nomad.io"), **auth),
         "ignore_errors": True},
        {"name": "auto-detect with a job token", **kv(kv2, s["job"], state="read", jwt=s["sign"](s["job"]),
                                                      **auth)},
    ], module_defaults={"group/selfhost.homelab.vault": {"url": vault.addr}})
    assert res.rc == 0, res.stdout
    assert res["read own"]["data"] == {"db_password": "pw-" + s["job"]}
    assert res["read other"]["failed"] is True and "HTTP 403" in res["read other"]["msg"]
    assert res["write own"]["failed"] is True
    assert res["write own"]["msg"].startswith("permission denied (HTTP 403) on POST %s/data/%s" % (kv2, s["job"]))
    assert res["other job's identity"]["failed"] is True
    assert res["other job's identity"]["msg"].startswith("jwt login failed: Vault answered HTTP 400")
    assert "nomad_job_id" in res["other job's identity"]["msg"]
    assert res["wrong audience"]["failed"] is True
    assert res["wrong audience"]["msg"].startswith("jwt login failed: Vault answered HTTP 400")
    assert res["auto-detect with a job token"]["engine_version"] == 2
    assert vault.ok("GET", "%s/data/%s" % (kv2, s["job"]))["data"]["data"] == {"db_password": "pw-" + s["job"]}


def test_approle_login(vault, kv2, job_setup, play):
    s = job_setup
    auth = {"auth_method": "approle", "auth_mount_point": s["approle_mount"], "role_id": s["role_id"],
            "secret_id": s["secret_id"]}
    res = play([
        {"name": "read", **kv(kv2, s["job"], state="read", **auth)},
        {"name": "bad secret id", **kv(kv2, s["job"], state="read", **{**auth, "secret_id": "nope"}),
         "ignore_errors": True},
        {"name": "missing secret id", **kv(kv2, s["job"], state="read",
                                           **{k: v for k, v in auth.items() if k != "secret_id"}),
         "ignore_errors": True},
    ], module_defaults={"group/selfhost.homelab.vault": {"url": vault.addr}})
    assert res.rc == 0, res.stdout
    assert res["read"]["data"] == {"db_password": "pw-" + s["job"]}
    assert res["bad secret id"]["msg"] == ("approle login failed: Vault answered HTTP 400 on POST auth/%s/login: "
                                           "invalid role or secret ID" % s["approle_mount"])
    assert res["missing secret id"]["msg"] == "auth_method is approle but all of the following are missing: secret_id"
