"""nomad_host_volume's flows (O(name) and O(volumes)) with recorded Nomad answers (tests/unit/fixtures/nomad/).

host_volumes_list.json (the stubs of photoprism-data and photoprism-cache) and host_volume_read.json
(photoprism-data read in full) were recorded from the Nomad simulator by tests/unit/fixtures/nomad/record.py.
Every request the module would send is asserted, in normal, check and diff mode; the integration tests
(tests/integration/nomad/test_nomad_host_volume.py) send the same requests over HTTP.
"""

from __future__ import annotations

import copy
import json
import os

import pytest
from ansible_collections.selfhost.homelab.plugins.module_utils._nomad import NomadError
from ansible_collections.selfhost.homelab.plugins.module_utils._nomad_host_volume import (
    PartialError,
    run_many,
    run_single,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "nomad")


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as fh:
        return json.load(fh)


STUBS = fixture("host_volumes_list.json")
NODE = STUBS[0]["NodeID"]
DATA_ID, CACHE_ID = STUBS[0]["ID"], STUBS[1]["ID"]
DATA_PATH, CACHE_PATH = "/srv/homelab/photoprism", "/srv/scratch/photoprism"


class FakeModule:
    def __init__(self, check_mode=False, diff=False, **params):
        base = dict(name=None, volumes=None, state="present", node_id=None, node_pool=None, host_path=None,
                    plugin_id=None, capacity_min=None, capacity_max=None, parameters=None,
                    capabilities=[{"access_mode": "single-node-writer", "attachment_mode": "file-system"}])
        base.update(params)
        self.params = base
        self.check_mode = check_mode
        self._diff = diff
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)


class FakeApi:
    """Answers like HostVolumes from the recorded volumes and records every request it would send."""

    def __init__(self, stubs=None, fail_write=None):
        self.stubs = copy.deepcopy(STUBS if stubs is None else stubs)
        data = fixture("host_volume_read.json")
        cache = dict(copy.deepcopy(data), ID=CACHE_ID, Name="photoprism-cache", HostPath=CACHE_PATH,
                     CreateIndex=12, ModifyIndex=12)
        self.full = {DATA_ID: data, CACHE_ID: cache}
        self.fail_write = fail_write
        self.calls = []

    def local_node_id(self):
        self.calls.append(("GET", "/v1/agent/self"))
        return NODE

    def list_on_node(self, node_id, prefix=""):
        self.calls.append(("GET", "/v1/volumes", node_id, prefix))
        return [s for s in self.stubs if s["NodeID"] == node_id and s["Name"].startswith(prefix)]

    def read(self, volume_id, name):
        self.calls.append(("GET", "/v1/volume/host/" + volume_id))
        return copy.deepcopy(self.full[volume_id])

    def find(self, name, node_id):
        matches = [s for s in self.list_on_node(node_id, name) if s["Name"] == name]
        return self.read(matches[0]["ID"], name) if matches else None

    def write(self, volume, create):
        verb = "create" if create else "register"
        self.calls.append(("PUT", "/v1/volume/host/" + verb, volume["Name"], volume.get("ID")))
        if volume["Name"] == self.fail_write:
            raise NomadError("%s host volume %s: HTTP 500 boom" % (verb, volume["Name"]))
        return {"Volume": dict(volume, ID=volume.get("ID") or "new-id", State="ready"), "Warnings": ""}

    def delete(self, volume_id):
        self.calls.append(("DELETE", "/v1/volume/host/" + volume_id))


LIST = ("GET", "/v1/volumes", NODE, "photoprism-")
READS = [("GET", "/v1/volume/host/" + DATA_ID), ("GET", "/v1/volume/host/" + CACHE_ID)]
ITEMS = [{"name": "photoprism-data", "host_path": DATA_PATH + "/"},
         {"name": "photoprism-cache", "host_path": CACHE_PATH},
         {"name": "photoprism-import", "host_path": "/srv/homelab/photoprism-import",
          "capabilities": [{"access_mode": "single-node-reader-only"}]}]
MODES = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize(("check_mode", "diff"), MODES)
def test_many_present_reads_once_and_writes_only_the_new_one(check_mode, diff):
    api, module = FakeApi(), FakeModule(check_mode, diff, volumes=copy.deepcopy(ITEMS))
    res = run_many(module, api)
    write = ("PUT", "/v1/volume/host/register", "photoprism-import", None)
    assert api.calls == [("GET", "/v1/agent/self"), LIST] + READS + ([] if check_mode else [write])
    assert res["changed"] is True and res["node_id"] == NODE
    assert [(v["name"], v["changed"], v["volume_id"]) for v in res["volumes"]] == [
        ("photoprism-data", False, DATA_ID), ("photoprism-cache", False, CACHE_ID),
        ("photoprism-import", True, "" if check_mode else "new-id")]
    assert res["volumes"][0]["changes"] == [] and res["volumes"][0]["volume"]["HostPath"] == DATA_PATH
    new = res["volumes"][2]
    assert new["volume"]["HostPath"] == "/srv/homelab/photoprism-import" and "HostPath" in new["changes"]
    assert new["volume"]["RequestedCapabilities"] == [{"AccessMode": "single-node-reader-only",
                                                       "AttachmentMode": "file-system"}]
    if diff:
        assert [d["before_header"] for d in res["diff"]] == ["host volume " + v["name"] for v in ITEMS]
        assert res["diff"][0]["before"] == res["diff"][0]["after"] != ""
        assert res["diff"][2]["before"] == "" and "single-node-reader-only/file-system" in res["diff"][2]["after"]
    else:
        assert "diff" not in res


@pytest.mark.parametrize(("check_mode", "diff"), MODES)
def test_many_present_unchanged_is_one_list_and_a_read_each(check_mode, diff):
    api = FakeApi()
    res = run_many(FakeModule(check_mode, diff, volumes=copy.deepcopy(ITEMS[:2]), node_id=NODE), api)
    assert api.calls == [LIST] + READS, "node_id given: no agent/self; nothing written"
    assert res["changed"] is False and not any(v["changed"] for v in res["volumes"])


@pytest.mark.parametrize("check_mode", [False, True])
def test_many_changed_host_path_is_updated_in_place(check_mode):
    items = copy.deepcopy(ITEMS[:2])
    items[1]["host_path"] = "/srv/scratch/elsewhere"
    api = FakeApi()
    res = run_many(FakeModule(check_mode, True, volumes=items, node_id=NODE), api)
    write = ("PUT", "/v1/volume/host/register", "photoprism-cache", CACHE_ID)
    assert api.calls == [LIST] + READS + ([] if check_mode else [write])
    assert [v["changed"] for v in res["volumes"]] == [False, True] and res["volumes"][1]["changes"] == ["HostPath"]
    assert "HostPath: %s\n" % CACHE_PATH in res["diff"][1]["before"]
    assert "HostPath: /srv/scratch/elsewhere\n" in res["diff"][1]["after"]


def test_many_plugin_volume_is_created():
    api = FakeApi(stubs=[])
    res = run_many(FakeModule(volumes=[{"name": "photoprism-tmp", "plugin_id": "mkdir", "capacity_max": "1GiB",
                                        "parameters": {"mode": 750}}], node_id=NODE), api)
    assert api.calls == [("GET", "/v1/volumes", NODE, "photoprism-tmp"),
                         ("PUT", "/v1/volume/host/create", "photoprism-tmp", None)]
    vol = res["volumes"][0]["volume"]
    assert vol["PluginID"] == "mkdir" and vol["RequestedCapacityMaxBytes"] == 1024 ** 3
    assert vol["Parameters"] == {"mode": "750"}


@pytest.mark.parametrize(("check_mode", "diff"), MODES)
def test_many_absent_deletes_those_that_exist(check_mode, diff):
    api = FakeApi()
    names = [{"name": "photoprism-cache"}, {"name": "photoprism-gone"}, {"name": "photoprism-data"}]
    res = run_many(FakeModule(check_mode, diff, volumes=names, state="absent", node_id=NODE), api)
    reads = [READS[1], READS[0]] if diff else []
    deletes = [("DELETE", "/v1/volume/host/" + CACHE_ID), ("DELETE", "/v1/volume/host/" + DATA_ID)]
    deletes = [] if check_mode else deletes
    assert api.calls == [LIST] + reads + deletes
    assert [(v["name"], v["changed"], v["changes"]) for v in res["volumes"]] == [
        ("photoprism-cache", True, ["deleted"]), ("photoprism-gone", False, []), ("photoprism-data", True, ["deleted"])]
    assert res["changed"] is True
    if diff:
        assert [d["after"] for d in res["diff"]] == ["", ""] and "HostPath: %s" % CACHE_PATH in res["diff"][0]["before"]


def test_many_absent_of_nothing_is_unchanged():
    api = FakeApi()
    res = run_many(FakeModule(volumes=[{"name": "other"}], state="absent", node_id=NODE), api)
    assert api.calls == [("GET", "/v1/volumes", NODE, "other")] and res["changed"] is False


@pytest.mark.parametrize(("item", "message"), [
    ({"name": "c", "host_path": "relative"}, "volumes[2].host_path: 'relative' must be an absolute path"),
    ({"name": "c"}, "volumes[2].host_path: give either host_path (register an existing path) or plugin_id"),
    ({"name": "c", "host_path": "/x", "plugin_id": "mkdir"}, "volumes[2].host_path: give either host_path"),
    ({"name": "c", "host_path": "/x", "capacity_min": "lots"}, "volumes[2].capacity_min: 'lots' is not a size"),
    ({"name": "c", "host_path": "/x", "capacity_min": "2G", "capacity_max": "1G"}, "volumes[2].capacity_max: "),
    ({"name": "c", "host_path": "/x", "capabilities": []}, "volumes[2].capabilities: at least one access mode"),
    ({"name": "c", "host_path": "/x", "capabilities": [{"access_mode": "rw"}]},
     "volumes[2].capabilities[0].access_mode: 'rw' must be one of"),
    ({"name": " ", "host_path": "/x"}, "volumes[2].name: must not be empty"),
    ({"name": "a", "host_path": "/x"}, "volumes[2].name: 'a' is also volumes[0]"),
])
def test_many_validates_every_item_before_any_request(item, message):
    api = FakeApi()
    volumes = [{"name": "a", "host_path": "/a"}, {"name": "b", "host_path": "/b"}, item]
    with pytest.raises(NomadError) as exc:
        run_many(FakeModule(volumes=volumes), api)
    assert message in str(exc.value)
    assert api.calls == [], "nothing is asked before the input is known good"


def test_many_absent_validates_names_only():
    api = FakeApi()
    with pytest.raises(NomadError, match=r"volumes\[1\]\.name: 'a' is also volumes\[0\]"):
        run_many(FakeModule(volumes=[{"name": "a"}, {"name": "a"}], state="absent"), api)
    assert api.calls == []


def test_many_duplicate_names_on_the_node_fail_before_any_write():
    dup = dict(STUBS[1], ID="other-id")
    api = FakeApi(stubs=STUBS + [dup])
    with pytest.raises(NomadError, match=r"volumes\[1\]\.name: 2 host volumes named 'photoprism-cache'"):
        run_many(FakeModule(volumes=copy.deepcopy(ITEMS), node_id=NODE), api)
    assert api.calls == [LIST]


def test_many_failed_write_reports_what_was_done():
    items = copy.deepcopy(ITEMS) + [{"name": "photoprism-more", "host_path": "/srv/more"}]
    items[0]["host_path"] = "/srv/moved"
    api = FakeApi(fail_write="photoprism-import")
    with pytest.raises(PartialError) as exc:
        run_many(FakeModule(volumes=items, node_id=NODE), api)
    assert str(exc.value).startswith("volumes[2] (photoprism-import): register host volume photoprism-import: "
                                     "HTTP 500 boom; 1 of 3 changes were made before")
    assert [c[2] for c in api.calls if c[0] == "PUT"] == ["photoprism-data", "photoprism-import"], "stops there"
    result = exc.value.result
    assert result["changed"] is True
    assert [v["changed"] for v in result["volumes"]] == [True, False, False, False]
    assert "HTTP 500 boom" in result["volumes"][2]["error"]


@pytest.mark.parametrize(("check_mode", "diff"), MODES)
def test_single_unchanged_and_new(check_mode, diff):
    api = FakeApi()
    res = run_single(FakeModule(check_mode, diff, name="photoprism-data", host_path=DATA_PATH), api)
    assert api.calls == [("GET", "/v1/agent/self"), ("GET", "/v1/volumes", NODE, "photoprism-data"), READS[0]]
    assert res["changed"] is False and res["volume_id"] == DATA_ID and res["changes"] == []
    api = FakeApi()
    res = run_single(FakeModule(check_mode, diff, name="photoprism-new", host_path="/srv/new", node_id=NODE), api)
    write = [("PUT", "/v1/volume/host/register", "photoprism-new", None)]
    assert api.calls == [("GET", "/v1/volumes", NODE, "photoprism-new")] + ([] if check_mode else write)
    assert res["changed"] is True and ("diff" in res) is diff


@pytest.mark.parametrize("check_mode", [False, True])
def test_single_absent(check_mode):
    api = FakeApi()
    res = run_single(FakeModule(check_mode, True, name="photoprism-cache", state="absent", node_id=NODE), api)
    delete = [("DELETE", "/v1/volume/host/" + CACHE_ID)]
    assert api.calls == [("GET", "/v1/volumes", NODE, "photoprism-cache"), READS[1]] + ([] if check_mode else delete)
    assert res["changed"] is True and res["diff"]["after"] == ""
