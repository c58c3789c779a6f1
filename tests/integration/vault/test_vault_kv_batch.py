"""selfhost.homelab.vault_kv with ``secrets``: many secrets of one mount in one module run.

ansible-playbook -> hvac -> HTTP -> Vault (the simulator, or a real Vault with VAULT_ADDR).
What Vault holds is checked over its HTTP API; the number of requests each run
sent is checked in the simulator's request log (tests marked simulator_only).
"""

from __future__ import annotations

import uuid

import pytest


def batch(mount, secrets, **options):
    return {"selfhost.homelab.vault_kv": {"mount": mount, "secrets": secrets, **options}}


def task(name, body, **extra):
    return {"name": name, **body, **extra}


def three(prefix):
    tag = uuid.uuid4().hex[:6]
    return [{"path": "%s-%s-%d" % (prefix, tag, n), "data": {"user": "u%d" % n, "password": "pw-%d-%s" % (n, tag)}}
            for n in range(3)]


def versions(vault, mount, secrets):
    return [vault.ok("GET", "%s/metadata/%s" % (mount, s["path"]))["data"]["current_version"] for s in secrets]


def test_kv2_batch_check_apply_idempotent_change_one(vault, kv2, play):
    secrets = three("batch")
    changed = [dict(s) for s in secrets]
    changed[1] = {"path": secrets[1]["path"], "data": {"user": "u1", "password": "rotated-" + uuid.uuid4().hex}}
    # A secret value long enough not to occur in a path: Ansible masks every no_log value wherever it
    # occurs in a result, so a value such as "1" would show as ******** inside the random path.
    extra = "extra-" + uuid.uuid4().hex
    merged = [{"path": secrets[2]["path"], "merge": True, "data": {"extra": extra}}]
    res = play([
        task("check", batch(kv2, secrets), check_mode=True),
        task("apply", batch(kv2, secrets)),
        task("again", batch(kv2, secrets, engine_version="2")),
        task("change one", batch(kv2, changed)),
        task("merge one", batch(kv2, merged)),
    ], vault=vault)
    assert res.rc == 0, res.stdout + res.stderr
    paths = [s["path"] for s in secrets]
    assert res["check"]["changed"] is True
    assert [(s["path"], s["changed"], s["created"], s["version"]) for s in res["check"]["secrets"]] == \
        [(p, True, True, 1) for p in paths]
    assert res["apply"]["changed"] is True and res["apply"]["engine_version"] == 2
    assert [(s["path"], s["changed"], s["version"]) for s in res["apply"]["secrets"]] == [(p, True, 1) for p in paths]
    assert res["again"]["changed"] is False
    assert [(s["changed"], s["version"]) for s in res["again"]["secrets"]] == [(False, 1)] * 3
    assert res["change one"]["changed"] is True
    assert [(s["changed"], s["version"]) for s in res["change one"]["secrets"]] == [(False, 1), (True, 2), (False, 1)]
    assert res["merge one"]["secrets"] == [{"path": paths[2], "changed": True, "created": False, "version": 2}]
    # Vault holds one version per write: the check wrote nothing, the idempotent run no new version.
    assert versions(vault, kv2, secrets) == [1, 2, 2]
    for n, want in enumerate([secrets[0]["data"], changed[1]["data"], {**secrets[2]["data"], "extra": extra}]):
        assert vault.ok("GET", "%s/data/%s" % (kv2, paths[n]))["data"]["data"] == want


@pytest.mark.simulator_only
def test_batch_requests_one_read_per_secret_and_one_write_per_change(vault, kv2, play):
    secrets = three("count")
    prefix = "/v1/%s/data/" % kv2
    vault.sim.reset_log()
    res = play([task("check", batch(kv2, secrets, engine_version="2"), check_mode=True)], vault=vault)
    assert res.rc == 0 and res["check"]["changed"] is True, res.stdout
    assert vault.count() == 3 and vault.count("GET", prefix) == 3 and res["check"]["requests"] == 3
    vault.sim.reset_log()
    res = play([task("write 3", batch(kv2, secrets, engine_version="2"))], vault=vault)
    assert res.rc == 0 and res["write 3"]["changed"] is True
    assert vault.count("GET", prefix) == 3 and vault.count("POST", prefix) == 3 and vault.count() == 6
    vault.sim.reset_log()
    res = play([task("again", batch(kv2, secrets, engine_version="2"))], vault=vault)
    assert res.rc == 0 and res["again"]["changed"] is False
    assert vault.count() == 3 and vault.count("GET", prefix) == 3 and vault.count("POST") == 0
    assert res["again"]["requests"] == 3
    # Detecting the engine costs one request per run, not one per secret.
    vault.sim.reset_log()
    res = play([task("again auto", batch(kv2, secrets))], vault=vault)
    assert res.rc == 0 and res["again auto"]["changed"] is False
    assert vault.count() == 4 and vault.count("GET", "/v1/sys/internal/ui/mounts/") == 1
    changed = [dict(s) for s in secrets]
    changed[2] = {"path": secrets[2]["path"], "data": {"user": "someone else"}}
    vault.sim.reset_log()
    res = play([task("change one", batch(kv2, changed, engine_version="2"))], vault=vault)
    assert res.rc == 0 and res["change one"]["changed"] is True
    assert vault.count("GET", prefix) == 3 and vault.count("POST") == 1 and vault.count() == 4
    assert vault.count("POST", prefix + secrets[2]["path"]) == 1


def test_kv1_batch(vault, kv1, play):
    secrets = three("legacy")
    res = play([
        task("check", batch(kv1, secrets), check_mode=True),
        task("apply", batch(kv1, secrets)),
        task("again", batch(kv1, secrets)),
        task("cas on v1", batch(kv1, [{**secrets[0], "cas": 0}]), ignore_errors=True),
    ], vault=vault)
    assert res.rc == 0, res.stdout + res.stderr
    assert res["check"]["changed"] is True
    assert res["apply"]["changed"] is True and res["apply"]["engine_version"] == 1
    assert [(s["changed"], s["created"], s["version"]) for s in res["apply"]["secrets"]] == [(True, True, None)] * 3
    assert res["again"]["changed"] is False
    assert res["cas on v1"]["msg"] == \
        "secrets[0].cas only applies to KV version 2, but mount '%s' is KV version 1" % kv1
    for s in secrets:
        assert vault.ok("GET", "%s/%s" % (kv1, s["path"]))["data"] == s["data"]


def test_batch_output_never_shows_a_secret_value(vault, kv2, play):
    """With --diff and -vvv, and no task-level no_log: values are neither in the diff nor in the logged args."""
    secrets = three("nolog")
    vault.ok("POST", "%s/data/%s" % (kv2, secrets[0]["path"]), {"data": secrets[0]["data"]})
    old = dict(secrets[1]["data"])
    vault.ok("POST", "%s/data/%s" % (kv2, secrets[1]["path"]), {"data": old})
    secrets[1] = {"path": secrets[1]["path"], "data": {**old, "password": "rotated-" + uuid.uuid4().hex}}
    res = play([task("write", batch(kv2, secrets))], vault=vault, diff=True, verbosity=3, callback="default")
    assert res.rc == 0, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert "<redacted (changed)>" in out and "<redacted>" in out
    # The diff is headed by the API paths of the changed secrets only; the paths are not masked.
    assert "%s/data/%s" % (kv2, secrets[1]["path"]) in out and "%s/data/%s (absent)" % (kv2, secrets[2]["path"]) in out
    assert "%s/data/%s" % (kv2, secrets[0]["path"]) not in out
    for value in [v for s in secrets for v in s["data"].values()] + list(old.values()):
        assert value not in out, value
    assert vault.ok("GET", "%s/data/%s" % (kv2, secrets[1]["path"]))["data"]["data"] == secrets[1]["data"]


@pytest.mark.simulator_only
def test_batch_bad_item_fails_before_any_request(vault, kv2, play):
    secrets = three("bad")
    vault.sim.reset_log()
    res = play([
        task("missing path", batch(kv2, [*secrets, {"data": {"a": "1"}}]), ignore_errors=True),
        task("empty data", batch(kv2, [secrets[0], {"path": "x", "data": {}}]), ignore_errors=True),
        task("twice", batch(kv2, [*secrets, secrets[1]]), ignore_errors=True),
        task("absent", batch(kv2, secrets, state="absent"), ignore_errors=True),
        task("with path", batch(kv2, secrets, path="x"), ignore_errors=True),
    ], vault=vault)
    assert res.rc == 0, res.stdout
    assert res["missing path"]["msg"] == "secrets[3].path is required"
    assert res["empty data"]["msg"].startswith("secrets[1].data must not be empty")
    assert res["twice"]["msg"] == "secrets[3].path '%s' is given twice (also secrets[1]); give each secret once" \
        % secrets[1]["path"]
    assert res["absent"]["msg"] == "secrets is only used with state=present, not state=absent"
    assert res["with path"]["msg"] == "parameters are mutually exclusive: path|secrets"
    assert vault.count() == 0


def test_batch_cas_mismatch_fails_before_any_write(vault, kv2, play):
    secrets = three("cas")
    for s in secrets:
        vault.ok("POST", "%s/data/%s" % (kv2, s["path"]), {"data": s["data"]})
    wanted = [{"path": s["path"], "data": {"new": "value"}} for s in secrets]
    wanted[2]["cas"] = 5
    res = play([task("cas", batch(kv2, wanted), ignore_errors=True)], vault=vault)
    assert res["cas"]["failed"] is True
    assert res["cas"]["msg"] == ("secrets[2] (%s): check-and-set failed: cas=5 but the current version of %s/%s is 1; "
                                 "nothing was written" % (secrets[2]["path"], kv2, secrets[2]["path"]))
    assert versions(vault, kv2, secrets) == [1, 1, 1]
