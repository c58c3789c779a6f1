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


def _log_since(nomad, mark):
    """The simulator's requests since `mark` (len of its log then), as (method, path) pairs."""
    return [(r["method"], r["path"]) for r in nomad.server.requests[mark:]]


@pytest.mark.simulator_only
def test_many_volumes_register_idempotent_update_remove(run_vol, nomad, vol_name, tmp_path):
    names = [vol_name + "-" + s for s in ("a", "b", "c")]
    paths = [str(tmp_path / s) for s in ("a", "b", "c")]
    items = [{"name": n, "host_path": p} for n, p in zip(names, paths, strict=True)]
    node = run_vol(name=names[0], state="absent")["node_id"]

    mark = len(nomad.server.requests)
    res = run_vol(check=True, diff=True, volumes=items, node_id=node)
    assert res["_rc"] == 0 and res["changed"] is True, res
    assert [v["name"] for v in res["volumes"]] == names and all(v["changed"] for v in res["volumes"])
    assert [d["before"] for d in res["diff"]] == ["", "", ""] and paths[1] in res["diff"][1]["after"]
    assert _log_since(nomad, mark) == [("GET", "/v1/volumes")], "check mode: one list, nothing written"
    assert all(_volumes(nomad, n) == [] for n in names)

    mark = len(nomad.server.requests)
    res = run_vol(volumes=items, node_id=node)
    assert res["changed"] is True and [v["volume"]["HostPath"] for v in res["volumes"]] == paths, res
    assert _log_since(nomad, mark) == [("GET", "/v1/volumes")] + [("PUT", "/v1/volume/host/register")] * 3
    ids = [v["volume_id"] for v in res["volumes"]]
    assert [_volumes(nomad, n)[0]["ID"] for n in names] == ids

    # The documented re-run: 1 list + 1 read per volume (+ agent/self without node_id), nothing written.
    mark = len(nomad.server.requests)
    res = run_vol(diff=True, volumes=items)
    assert res["changed"] is False and not any(v["changed"] for v in res["volumes"]), res
    assert all(d["before"] == d["after"] for d in res["diff"])
    assert _log_since(nomad, mark) == ([("GET", "/v1/agent/self"), ("GET", "/v1/volumes")]
                                       + [("GET", "/v1/volume/host/" + i) for i in ids])

    items[1] = {"name": names[1], "host_path": paths[1] + "-moved"}
    mark = len(nomad.server.requests)
    res = run_vol(volumes=items, node_id=node)
    assert res["changed"] is True and [v["changed"] for v in res["volumes"]] == [False, True, False], res
    assert res["volumes"][1]["changes"] == ["HostPath"] and res["volumes"][1]["volume_id"] == ids[1]
    writes = [r for r in _log_since(nomad, mark) if r[0] != "GET"]
    assert writes == [("PUT", "/v1/volume/host/register")], "only the changed volume is written"
    assert _volumes(nomad, names[1])[0]["ID"] == ids[1], "updated in place"

    gone = [{"name": names[0]}, {"name": names[2]}]
    res = run_vol(check=True, volumes=gone, state="absent", node_id=node)
    assert res["changed"] is True and len(_volumes(nomad, names[0])) == 1
    mark = len(nomad.server.requests)
    res = run_vol(diff=True, volumes=gone, state="absent", node_id=node)
    assert res["changed"] is True and [d["after"] for d in res["diff"]] == ["", ""], res
    assert "HostPath: %s" % paths[2] in res["diff"][1]["before"]
    assert [r for r in _log_since(nomad, mark) if r[0] == "DELETE"] == [("DELETE", "/v1/volume/host/" + ids[0]),
                                                                        ("DELETE", "/v1/volume/host/" + ids[2])]
    assert _volumes(nomad, names[0]) == [] and _volumes(nomad, names[2]) == [] and len(_volumes(nomad, names[1])) == 1
    res = run_vol(volumes=gone + [{"name": names[1]}], state="absent", node_id=node)
    assert [v["changed"] for v in res["volumes"]] == [False, False, True]
    assert run_vol(volumes=gone, state="absent", node_id=node)["changed"] is False


@pytest.mark.parametrize(("args", "message"), [
    ({"volumes": [{"name": "v-a", "host_path": "/srv/a"}, {"name": "v-b", "host_path": "/srv/b"},
                  {"name": "v-c", "host_path": "srv/c"}]}, "volumes[2].host_path: 'srv/c' must be an absolute path"),
    ({"volumes": [{"name": "v-a", "host_path": "/srv/a"}, {"name": "v-a", "host_path": "/srv/b"}]},
     "volumes[1].name: 'v-a' is also volumes[0]"),
    ({"volumes": [{"name": "v-a", "host_path": "/srv/a", "capacity_max": "lots"}]},
     "volumes[0].capacity_max: 'lots' is not a size"),
    ({"volumes": [{"name": "v-a", "host_path": "/srv/a", "plugin_id": "mkdir"}]},
     "volumes[0].host_path: give either host_path"),
    ({"volumes": [{"name": "v-a"}], "name": "v-a"}, "parameters are mutually exclusive: name|volumes"),
    ({"volumes": [{"name": "v-a"}], "host_path": "/srv/a"}, "parameters are mutually exclusive: volumes|host_path"),
])
def test_many_bad_input_fails_before_any_request(run_vol, nomad, args, message):
    mark = len(nomad.server.requests) if nomad.server else 0
    res = run_vol(**args)
    assert res["_rc"] != 0 and res.get("failed"), res
    assert message in res["msg"], res["msg"]
    if nomad.server:
        assert _log_since(nomad, mark) == []
