"""selfhost.homelab.vault_kv end to end: ansible-playbook -> hvac -> HTTP -> Vault (simulated or real).

Each play follows check -> apply -> apply again (not changed) -> remove, and the
state in Vault is checked over the HTTP API, not through the module.
"""

from __future__ import annotations

import socket
import uuid

import pytest
import requests

NEW = "new-value-%s" % uuid.uuid4().hex[:8]
SECRET = {"user": "admin", "password": "s3cr3t-value-%s" % uuid.uuid4().hex[:8]}


def kv(mount, path, **options):
    return {"selfhost.homelab.vault_kv": {"mount": mount, "path": path, **options}}


def task(name, body, **extra):
    return {"name": name, **body, **extra}


def test_kv2_check_apply_idempotent_merge_replace(vault, kv2, play):
    path = "app-" + uuid.uuid4().hex[:6]
    res = play([
        task("check create", kv(kv2, path, data=SECRET), check_mode=True),
        task("read after check", kv(kv2, path, state="read")),
        task("create", kv(kv2, path, data=SECRET)),
        task("create again", kv(kv2, path, data=SECRET)),
        task("merge one field", kv(kv2, path, data={"password": "rotated"}, merge=True)),
        task("merge again", kv(kv2, path, data={"password": "rotated"}, merge=True)),
        task("merge removes a field", kv(kv2, path, data={"user": None}, merge=True)),
        task("replace", kv(kv2, path, data={"only": "this"})),
        task("read", kv(kv2, path, state="read")),
        task("read version 1", kv(kv2, path, state="read", version=1)),
    ], vault=vault)
    assert res.rc == 0, res.stdout + res.stderr
    assert res["check create"]["changed"] is True
    assert res["read after check"]["exists"] is False
    assert res["create"]["changed"] is True and res["create"]["version"] == 1
    assert res["create"]["created"] is True and res["create"]["engine_version"] == 2
    assert res["create again"]["changed"] is False and res["create again"]["version"] == 1
    assert res["merge one field"]["changed"] is True and res["merge one field"]["version"] == 2
    assert res["merge again"]["changed"] is False
    assert res["merge removes a field"]["version"] == 3
    assert res["replace"]["version"] == 4
    assert res["read"]["data"] == {"only": "this"}
    assert res["read version 1"]["data"] == SECRET
    # Vault holds exactly the versions the changed tasks made.
    meta = vault.ok("GET", "%s/metadata/%s" % (kv2, path))["data"]
    assert meta["current_version"] == 4 and sorted(meta["versions"]) == ["1", "2", "3", "4"]
    data = vault.ok("GET", "%s/data/%s?version=3" % (kv2, path))["data"]["data"]
    assert data == {"password": "rotated"}


@pytest.mark.simulator_only
def test_unchanged_secret_costs_one_read_and_no_write(vault, kv2, play):
    path = "count-" + uuid.uuid4().hex[:6]
    vault.ok("POST", "%s/data/%s" % (kv2, path), {"data": SECRET})
    vault.sim.reset_log()
    res = play([task("unchanged", kv(kv2, path, data=SECRET, engine_version="2"))], vault=vault)
    assert res.rc == 0 and res["unchanged"]["changed"] is False
    assert vault.count() == 1 and vault.count("GET", "/v1/%s/data/%s" % (kv2, path)) == 1
    vault.sim.reset_log()
    res = play([task("unchanged auto", kv(kv2, path, data=SECRET))], vault=vault)
    assert res.rc == 0 and res["unchanged auto"]["changed"] is False
    assert vault.count() == 2 and vault.count("GET", "/v1/sys/internal/ui/mounts/") == 1
    assert vault.count("POST") == 0
    vault.sim.reset_log()
    res = play([task("changed", kv(kv2, path, data={"user": "other"}, engine_version="2"))], vault=vault)
    assert res.rc == 0 and res["changed"]["changed"] is True
    assert vault.count("GET") == 1 and vault.count("POST") == 1 and vault.count() == 2


def test_kv2_metadata(vault, kv2, play):
    path = "meta-" + uuid.uuid4().hex[:6]
    meta = {"max_versions": 3, "cas_required": True, "delete_version_after": "720h",
            "custom_metadata": {"owner": "traefik"}}
    res = play([
        task("check metadata", kv(kv2, path, data=SECRET, metadata=meta), check_mode=True),
        task("set metadata", kv(kv2, path, data=SECRET, metadata=meta)),
        task("set metadata again", kv(kv2, path, data=SECRET, metadata=meta)),
        task("custom metadata only", kv(kv2, path, data=SECRET, metadata={"custom_metadata": {"owner": "traefik"}})),
        task("change custom metadata", kv(kv2, path, data=SECRET, metadata={"custom_metadata": {"owner": "x"}})),
    ], vault=vault)
    assert res.rc == 0, res.stdout
    assert res["check metadata"]["changed"] is True
    assert res["set metadata"]["changed"] is True and res["set metadata"]["version"] == 1
    assert res["set metadata again"]["changed"] is False
    assert res["custom metadata only"]["changed"] is False
    assert res["change custom metadata"]["changed"] is True
    got = vault.ok("GET", "%s/metadata/%s" % (kv2, path))["data"]
    assert got["max_versions"] == 3 and got["cas_required"] is True
    assert got["custom_metadata"] == {"owner": "x"} and got["current_version"] == 1
    # cas_required is honoured: the module's writes carry the version it read.
    res = play([task("write with cas_required", kv(kv2, path, data={"user": "new"}))], vault=vault)
    assert res.rc == 0 and res["write with cas_required"]["version"] == 2


def test_kv2_delete_destroy_delete_metadata(vault, kv2, play):
    path = "del-" + uuid.uuid4().hex[:6]
    for n in range(3):
        vault.ok("POST", "%s/data/%s" % (kv2, path), {"data": {"n": str(n)}})
    res = play([
        task("check delete", kv(kv2, path, state="absent"), check_mode=True),
        task("delete current", kv(kv2, path, state="absent")),
        task("delete current again", kv(kv2, path, state="absent")),
        task("destroy 1", kv(kv2, path, state="absent", versions=[1], destroy=True)),
        task("destroy 1 again", kv(kv2, path, state="absent", versions=[1], destroy=True)),
        task("delete 2", kv(kv2, path, state="absent", versions=[2])),
        task("read deleted", kv(kv2, path, state="read")),
    ], vault=vault)
    assert res.rc == 0, res.stdout
    assert res["check delete"]["changed"] is True
    assert res["delete current"]["changed"] is True and res["delete current"]["versions"] == [3]
    assert res["delete current again"]["changed"] is False
    assert res["destroy 1"]["changed"] is True and res["destroy 1 again"]["changed"] is False
    assert res["delete 2"]["changed"] is True
    assert res["read deleted"]["exists"] is False
    versions = vault.ok("GET", "%s/metadata/%s" % (kv2, path))["data"]["versions"]
    assert versions["1"]["destroyed"] is True
    assert versions["2"]["deletion_time"] and versions["3"]["deletion_time"]
    # undelete works on soft-deleted versions (the module did not destroy them)
    vault.ok("POST", "%s/undelete/%s" % (kv2, path), {"versions": [3]})
    assert vault.ok("GET", "%s/data/%s" % (kv2, path))["data"]["data"] == {"n": "2"}
    res = play([
        task("check delete metadata", kv(kv2, path, state="absent", delete_metadata=True), check_mode=True),
        task("delete metadata", kv(kv2, path, state="absent", delete_metadata=True)),
        task("delete metadata again", kv(kv2, path, state="absent", delete_metadata=True)),
    ], vault=vault)
    assert res.rc == 0, res.stdout
    assert res["check delete metadata"]["changed"] is True
    assert res["delete metadata"]["changed"] is True and res["delete metadata again"]["changed"] is False
    assert vault.api("GET", "%s/metadata/%s" % (kv2, path)).status_code == 404


def test_kv1(vault, kv1, play):
    path = "legacy/" + uuid.uuid4().hex[:6]
    res = play([
        task("check create", kv(kv1, path, data=SECRET), check_mode=True),
        task("create", kv(kv1, path, data=SECRET)),
        task("create again", kv(kv1, path, data=SECRET)),
        task("merge", kv(kv1, path, data={"extra": "1"}, merge=True)),
        task("read", kv(kv1, path, state="read")),
        task("cas on v1", kv(kv1, path, data={"x": "unchanged-%s" % uuid.uuid4().hex}, cas=1), ignore_errors=True),
    ], vault=vault)
    assert res.rc == 0, res.stdout
    assert res["check create"]["changed"] is True
    assert res["create"]["changed"] is True and res["create"]["engine_version"] == 1
    assert res["create again"]["changed"] is False
    assert res["merge"]["changed"] is True
    assert res["read"]["data"] == {**SECRET, "extra": "1"}
    assert res["cas on v1"]["failed"] is True
    assert res["cas on v1"]["msg"] == "cas only applies to KV version 2, but mount '%s' is KV version 1" % kv1
    assert vault.ok("GET", "%s/%s" % (kv1, path))["data"] == {**SECRET, "extra": "1"}
    res = play([
        task("check delete", kv(kv1, path, state="absent"), check_mode=True),
        task("delete", kv(kv1, path, state="absent")),
        task("delete again", kv(kv1, path, state="absent")),
    ], vault=vault)
    assert res.rc == 0
    assert res["check delete"]["changed"] is True and res["delete"]["changed"] is True
    assert res["delete again"]["changed"] is False
    assert vault.api("GET", "%s/%s" % (kv1, path)).status_code == 404


def test_diff_redacts_values_and_vvv_never_shows_them(vault, kv2, play):
    path = "nolog-" + uuid.uuid4().hex[:6]
    old = "old-" + uuid.uuid4().hex
    new = "new-" + uuid.uuid4().hex
    vault.ok("POST", "%s/data/%s" % (kv2, path), {"data": {"token": old, "keep": "k-" + old}})
    res = play([task("rotate", kv(kv2, path, data={"token": new, "keep": "k-" + old}))], vault=vault,
               diff=True, verbosity=3, callback="default")
    assert res.rc == 0, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert "<redacted (changed)>" in out and "<redacted>" in out
    for value in (old, new, "k-" + old):
        assert value not in out
    assert vault.ok("GET", "%s/data/%s" % (kv2, path))["data"]["data"]["token"] == new


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_faults_fail_in_one_line_and_change_nothing(vault, kv2, play):
    path = "fault-" + uuid.uuid4().hex[:6]
    vault.ok("POST", "%s/data/%s" % (kv2, path), {"data": {"a": "1"}})
    vault.ok("POST", "sys/mounts/%s-transit" % kv2, {"type": "transit"})
    try:
        res = play([
            task("unreachable", {"selfhost.homelab.vault_kv": {
                "url": "http://127.0.0.1:%d" % _free_port(), "mount": kv2, "path": path, "data": {"a": NEW}}},
                ignore_errors=True),
            task("wrong token", {"selfhost.homelab.vault_kv": {
                "token": "hvs.not-a-token", "mount": kv2, "path": path, "data": {"a": NEW}}}, ignore_errors=True),
            task("wrong token v2 given", {"selfhost.homelab.vault_kv": {
                "token": "hvs.not-a-token", "mount": kv2, "path": path, "engine_version": "2",
                "data": {"a": NEW}}}, ignore_errors=True),
            task("non-kv mount", kv("%s-transit" % kv2, path, data={"a": NEW}), ignore_errors=True),
            task("missing mount", kv("nope-" + kv2, path, data={"a": NEW}), ignore_errors=True),
            task("cas mismatch", kv(kv2, path, data={"a": NEW}, cas=7), ignore_errors=True),
            task("cas zero on existing", kv(kv2, path, data={"a": NEW}, cas=0), ignore_errors=True),
            task("bad input", kv(kv2, path, state="absent", data={"a": NEW}), ignore_errors=True),
            task("bad metadata", kv(kv2, path, data={"a": NEW}, metadata={"custom_metadata": {"n": 1}}),
                 ignore_errors=True),
        ], vault=vault)
    finally:
        vault.api("DELETE", "sys/mounts/%s-transit" % kv2)
    assert res.rc == 0, res.stdout
    msgs = {}
    for name in ("unreachable", "wrong token", "wrong token v2 given", "non-kv mount", "missing mount",
                 "cas mismatch", "cas zero on existing", "bad input", "bad metadata"):
        assert res[name]["failed"] is True, name
        msgs[name] = res[name]["msg"]
        assert "\n" not in msgs[name] and "Traceback" not in msgs[name], msgs[name]
    assert msgs["unreachable"].startswith("cannot reach Vault at http://127.0.0.1:")
    assert "connection refused" in msgs["unreachable"]
    assert "HTTP 403" in msgs["wrong token"]
    assert msgs["wrong token v2 given"].startswith("permission denied (HTTP 403) on GET %s/data/%s" % (kv2, path))
    assert msgs["non-kv mount"] == "mount '%s-transit' is a 'transit' secrets engine, not KV" % kv2
    assert "cannot detect the KV version of mount 'nope-" in msgs["missing mount"]
    assert msgs["cas mismatch"].startswith("check-and-set failed: cas=7 but the current version")
    assert msgs["cas zero on existing"].startswith("check-and-set failed: cas=0")
    assert msgs["bad input"] == "data is only used with state=present"
    assert msgs["bad metadata"] == "metadata.custom_metadata.n must be a string, got int"
    meta = vault.ok("GET", "%s/metadata/%s" % (kv2, path))["data"]
    assert meta["current_version"] == 1
    assert vault.ok("GET", "%s/data/%s" % (kv2, path))["data"]["data"] == {"a": "1"}


@pytest.mark.simulator_only
def test_sealed_vault_and_injected_503(vault, kv2, play, tmp_path):
    from tests.simulators.vault import start

    sealed = start(str(tmp_path / "data"))
    try:
        init = sealed.app  # initialise through the API, then leave it sealed
        keys = requests.post(sealed.address + "/v1/sys/init", json={"secret_shares": 3, "secret_threshold": 2},
                             timeout=5).json()
        assert init.sealed
        res = play([task("sealed", {"selfhost.homelab.vault_kv": {
            "url": sealed.address, "token": keys["root_token"], "mount": "kv", "path": "x", "data": {"a": NEW}}},
            ignore_errors=True)])
        assert res["sealed"]["failed"] is True
        assert res["sealed"]["msg"] == "Vault at %s is sealed (HTTP 503): unseal it, then run again" % sealed.address
    finally:
        sealed.stop()
    path = "inject-" + uuid.uuid4().hex[:6]
    vault.ok("POST", "%s/data/%s" % (kv2, path), {"data": {"a": "1"}})
    requests.post(vault.addr + "/_sim/fault", json={"status": 500, "count": 1, "method": "POST",
                                                    "path_prefix": "/v1/%s/data/" % kv2,
                                                    "errors": ["internal error"]}, timeout=5)
    res = play([task("write hits a 500", kv(kv2, path, data={"a": NEW}, engine_version="2"), ignore_errors=True)],
               vault=vault)
    requests.delete(vault.addr + "/_sim/fault", timeout=5)
    assert res["write hits a 500"]["msg"] == "Vault answered HTTP 500 on POST %s/data/%s: internal error" % (kv2, path)
    assert vault.ok("GET", "%s/data/%s" % (kv2, path))["data"]["metadata"]["version"] == 1


def test_token_from_env_and_token_file(vault, kv2, play, tmp_path):
    path = "env-" + uuid.uuid4().hex[:6]
    token_file = tmp_path / "vault-token"
    token_file.write_text(vault.token + "\n")
    res = play([
        task("env", kv(kv2, path, data={"a": "1"})),
        task("token file", {"selfhost.homelab.vault_kv": {
            "url": vault.addr, "token_file": str(token_file), "mount": kv2, "path": path, "data": {"a": "1"}}},
            environment={"VAULT_TOKEN": ""}),
        task("no token", {"selfhost.homelab.vault_kv": {
            "url": vault.addr, "token_file": str(tmp_path / "missing"), "mount": kv2, "path": path,
            "data": {"a": "1"}}}, environment={"VAULT_TOKEN": ""}, ignore_errors=True),
    ], extra_env={"VAULT_ADDR": vault.addr, "VAULT_TOKEN": vault.token})
    assert res["env"]["changed"] is True
    assert res["token file"]["changed"] is False
    assert res["no token"]["msg"].startswith("no Vault token: set token (or VAULT_TOKEN), or write it to token_file")
