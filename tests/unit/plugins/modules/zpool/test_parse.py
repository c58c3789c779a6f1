"""The ZFS output parser against outputs recorded from real OpenZFS (record_fixtures.py)."""

import glob
import os

import pytest
from ansible_collections.selfhost.homelab.plugins.module_utils._zfs_parse import (
    normalize_value,
    parse_blkid,
    parse_import_list,
    parse_properties,
    parse_scan,
    parse_status,
    parse_status_json,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
SUITES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(FIXTURES, "*")))


def fixture(suite, name):
    with open(os.path.join(FIXTURES, suite, name + ".txt")) as f:
        return f.read()


def shape(pool, role="data"):
    return [(v["type"], [d["path"].rsplit("/", 1)[-1] for d in v["devices"]]) for v in pool["layout"][role]]


def statuses(suite, name):
    """The text status and, where recorded (OpenZFS 2.3+), the JSON one: both parse alike."""
    out = [parse_status(fixture(suite, "status_" + name))]
    if os.path.exists(os.path.join(FIXTURES, suite, "status_json_%s.txt" % name)):
        out.append(parse_status_json(fixture(suite, "status_json_" + name), "tank"))
    return out


@pytest.mark.parametrize("suite", SUITES)
def test_mirror(suite):
    for pool in statuses(suite, "mirror"):
        assert pool["name"] == "tank" and pool["state"] == "ONLINE"
        assert shape(pool) == [("mirror", ["virtio-disk1-part1", "virtio-disk2-part1"])]
        assert pool["errors"] == 0
        assert pool["scan"]["state"] == "none"
        assert all(d["read"] == 0 and d["cksum"] == 0 for d in pool["layout"]["data"][0]["devices"])


@pytest.mark.parametrize("suite", SUITES)
def test_classes(suite):
    for pool in statuses(suite, "classes"):
        assert shape(pool) == [("mirror", ["virtio-disk1-part1", "virtio-disk2-part1"])]
        assert shape(pool, "log") == [("disk", ["virtio-disk3-part1"])]
        assert shape(pool, "cache") == [("disk", ["virtio-disk4-part1"])]
        assert shape(pool, "spare") == [("disk", ["virtio-disk5-part1"])]
        assert shape(pool, "special") == [("disk", ["virtio-disk6-part1"])]
        assert pool["layout"]["spare"][0]["state"] == "AVAIL"


@pytest.mark.parametrize("suite", SUITES)
def test_raidz2_draid_single_replaced(suite):
    for pool in statuses(suite, "raidz2"):
        assert [v["type"] for v in pool["layout"]["data"]] == ["raidz2"]
        assert len(pool["layout"]["data"][0]["devices"]) == 4
    for pool in statuses(suite, "draid"):
        vdev = pool["layout"]["data"][0]
        assert vdev["type"] == "draid1" and vdev["spec"] == "draid1:2d:4c:1s"
        assert [s["name"] for s in pool["layout"]["spare"]] == ["draid1-0-0"]
    for pool in statuses(suite, "single"):
        assert shape(pool) == [("disk", ["virtio-disk1-part1"])]
    for pool in statuses(suite, "replaced"):
        assert shape(pool) == [("mirror", ["virtio-disk1-part1", "virtio-disk3-part1"])]
        assert pool["scan"]["function"] == "resilver" and pool["scan"]["state"] == "finished"


@pytest.mark.parametrize("suite", SUITES)
def test_scrubbed_and_degraded(suite):
    for pool in statuses(suite, "scrubbed"):
        scan = pool["scan"]
        assert (scan["function"], scan["state"], scan["errors"]) == ("scrub", "finished", 0)
        assert scan["end"]
    for pool in statuses(suite, "degraded"):
        assert pool["state"] == "DEGRADED"
        states = [d["state"] for d in pool["layout"]["data"][0]["devices"]]
        assert states == ["ONLINE", "OFFLINE"]
        assert "taken offline" in pool["status"]


@pytest.mark.parametrize("suite", SUITES)
def test_properties(suite):
    props = parse_properties(fixture(suite, "get_all_mirror"))
    assert props["health"]["value"] == "ONLINE"
    assert props["size"]["value"].isdigit()
    assert props["autotrim"] == {"value": "off", "source": "default"}
    fs = parse_properties(fixture(suite, "zfs_get_mirror"), columns=("property", "value", "source"))
    assert fs["compression"] == {"value": "lz4", "source": "local"}
    assert fs["mountpoint"]["value"] == "/srv/tank"


@pytest.mark.parametrize("suite", SUITES)
def test_import_list_and_blkid(suite):
    pools = parse_import_list(fixture(suite, "import_list"))
    assert [(p["name"], p["state"]) for p in pools] == [("tank", "ONLINE")]
    assert pools[0]["id"].isdigit()
    assert parse_import_list(fixture(suite, "import_none")) == []
    exported = parse_blkid(fixture(suite, "blkid_exported"))
    zfs = [v for v in exported.values() if v.get("TYPE") == "zfs_member"]
    assert zfs and zfs[0]["LABEL"] == "tank"
    others = parse_blkid(fixture(suite, "blkid_ext4_gpt_blank"))
    kinds = sorted(v.get("TYPE") or v.get("PTTYPE") or "" for v in others.values())
    assert "ext4" in kinds and "gpt" in kinds


def test_scan_lines():
    assert parse_scan("none requested")["state"] == "none"
    assert parse_scan("scrub in progress since Fri Nov 27 15:10:14 2026\n\t1.2G scanned")["state"] == "scanning"
    assert parse_scan("scrub canceled on Fri Nov 27 15:10:14 2026")["state"] == "canceled"
    assert parse_scan("something new")["state"] == "unknown"


@pytest.mark.parametrize("wanted, actual, same", [
    (True, "on", True), (False, "off", True), ("1M", "1048576", True), ("128K", "131072", True),
    ("lz4", "lz4", True), ("lz4", "zstd", False), (12, "12", True), ("64K", "131072", False),
])
def test_normalize_value(wanted, actual, same):
    w, a = normalize_value(wanted, actual)
    assert (w == a) is same
