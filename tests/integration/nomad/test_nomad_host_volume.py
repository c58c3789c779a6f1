"""selfhost.homelab.nomad_host_volume over real HTTP (simulator, or a real Nomad >= 1.10 via NOMAD_ADDR)."""

from __future__ import annotations

import uuid

import pytest
import requests


@pytest.fixture
def vol_name():
    return "itest-vol-" + uuid.uuid4().hex[:8]


@pytest.fixture
def run_vol(nomad, run_module):
    def run(check=False, diff=False, **args):
        return run_module("nomad_host_volume", {**nomad.conn(), **args}, check, diff)

    return run


def _volumes(nomad, name):
    headers = {"X-Nomad-Token": nomad.token} if nomad.token else {}
    listed = requests.get(nomad.address + "/v1/volumes", params={"type": "host", "prefix": name},
                          headers=headers, timeout=10).json()
    return [v for v in listed if v["Name"] == name]


def test_register_check_apply_idempotent_update_remove(run_vol, nomad, vol_name, tmp_path):
    path = str(tmp_path)
    res = run_vol(check=True, diff=True, name=vol_name, host_path=path)
    assert res["_rc"] == 0 and res["changed"] is True, res
    assert "HostPath: %s" % path in res["diff"]["after"] and res["diff"]["before"] == ""
    assert res["node_id"], "the local agent's node is found"
    assert _volumes(nomad, vol_name) == [], "check mode must not register"

    res = run_vol(name=vol_name, host_path=path)
    assert res["changed"] is True and res["volume"]["HostPath"] == path and res["volume_id"]
    vid = res["volume_id"]
    (listed,) = _volumes(nomad, vol_name)
    assert listed["ID"] == vid and listed["NodeID"] == res["node_id"] and listed["State"] == "ready"

    res = run_vol(diff=True, name=vol_name, host_path=path + "/")
    assert res["changed"] is False and res["changes"] == [] and res["volume_id"] == vid
    assert res["diff"]["before"] == res["diff"]["after"]

    ro = [{"access_mode": "single-node-reader-only"}]
    res = run_vol(check=True, diff=True, name=vol_name, host_path=path, capabilities=ro)
    assert res["changed"] is True and res["changes"] == ["RequestedCapabilities"]
    assert "single-node-writer/file-system" in res["diff"]["before"]
    assert "single-node-reader-only/file-system" in res["diff"]["after"]
    res = run_vol(name=vol_name, host_path=path, capabilities=ro, capacity_max="1GiB")
    assert res["changed"] is True and res["volume_id"] == vid, "updated in place"
    assert res["volume"]["RequestedCapacityMaxBytes"] == 1024 ** 3
    assert run_vol(name=vol_name, host_path=path, capabilities=ro, capacity_max=1024 ** 3)["changed"] is False
    assert len(_volumes(nomad, vol_name)) == 1

    res = run_vol(check=True, name=vol_name, state="absent")
    assert res["changed"] is True and len(_volumes(nomad, vol_name)) == 1
    res = run_vol(diff=True, name=vol_name, state="absent")
    assert res["changed"] is True and res["diff"]["after"] == ""
    assert _volumes(nomad, vol_name) == []
    assert run_vol(name=vol_name, state="absent")["changed"] is False


def test_plugin_created_volume(run_vol, nomad, vol_name):
    res = run_vol(name=vol_name, plugin_id="mkdir", parameters={"mode": "0755"})
    assert res["changed"] is True and res["volume"]["PluginID"] == "mkdir", res
    assert run_vol(name=vol_name, plugin_id="mkdir", parameters={"mode": "0755"})["changed"] is False
    assert run_vol(name=vol_name, state="absent")["changed"] is True


@pytest.mark.parametrize(("args", "message"), [
    ({"host_path": "relative/dir"}, "host_path: 'relative/dir' must be an absolute path"),
    ({}, "host_path: give either host_path"),
    ({"host_path": "/srv/x", "capacity_min": "lots"}, "capacity_min: 'lots' is not a size"),
    ({"host_path": "/srv/x", "capacity_min": "2GiB", "capacity_max": "1GiB"}, "capacity_max: 1073741824 is below"),
    ({"host_path": "/srv/x", "capabilities": [{"access_mode": "many-writers"}]}, "value of access_mode must be one of"),
    ({"host_path": "/srv/x", "plugin_id": "mkdir"}, "parameters are mutually exclusive: host_path|plugin_id"),
])
def test_bad_input_fails_before_any_change(run_vol, nomad, vol_name, args, message):
    res = run_vol(name=vol_name, **args)
    assert res["_rc"] != 0 and res.get("failed"), res
    assert message in res["msg"], res["msg"]
    assert _volumes(nomad, vol_name) == []


def test_bad_token(nomad, run_module, vol_name):
    if not nomad.token:
        pytest.skip("this Nomad runs without ACLs")
    res = run_module("nomad_host_volume", {**nomad.conn(), "name": vol_name, "host_path": "/srv/x",
                                           "token": "not-a-token"})
    assert res["_rc"] != 0 and "permission denied (HTTP 403" in res["msg"], res
