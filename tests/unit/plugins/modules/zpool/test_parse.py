"""The ZFS output parser against outputs recorded from real OpenZFS (record_fixtures.py)."""

import glob
import os
import time

import pytest
from ansible_collections.selfhost.homelab.plugins.module_utils._zfs_parse import (
    nicebytes,
    normalize_value,
    parse_blkid,
    parse_import_list,
    parse_json_scan,
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


JSON_PAIRS = sorted(
    (suite, os.path.basename(p)[len("status_json_"):-len(".txt")])
    for suite in SUITES for p in glob.glob(os.path.join(FIXTURES, suite, "status_json_*.txt"))
    if os.path.exists(os.path.join(FIXTURES, suite, os.path.basename(p).replace("status_json_", "status_")))
    and not p.endswith("_missing.txt")
)


def facts(pool):
    """What the module compares and reports: layout, health, last scan."""
    layout = {role: [(v["type"], v["name"], v["state"], v.get("spec"),
                      [(d["path"], d["state"], d["read"], d["write"], d["cksum"]) for d in v["devices"]])
                     for v in vdevs] for role, vdevs in pool["layout"].items()}
    scan = {k: pool["scan"].get(k) for k in ("function", "state", "errors", "repaired", "start", "end", "duration")}
    # (no guid: text status has none; the module takes it from `zpool get guid`)
    return {"name": pool["name"], "state": pool["state"], "errors": pool["errors"],
            "status": pool["status"], "action": pool["action"], "layout": layout, "scan": scan}


@pytest.fixture
def guest_tz(monkeypatch):
    """The recording VM runs in UTC; JSON times are epochs that the parser
    prints in the host's local time, as the text status does."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("suite, name", JSON_PAIRS, ids=["%s-%s" % p for p in JSON_PAIRS])
def test_text_and_json_agree(guest_tz, suite, name):
    """OpenZFS 2.3+: the text and the JSON status of the same pool give the same facts."""
    text = facts(parse_status(fixture(suite, "status_" + name)))
    js = facts(parse_status_json(fixture(suite, "status_json_" + name), "tank"))
    assert js == text


@pytest.mark.parametrize("suite", SUITES)
def test_json_recorded_where_openzfs_has_it(suite):
    """Suites on OpenZFS 2.3+ must carry JSON recordings, so the agreement test above runs."""
    major, minor = (int(x) for x in fixture(suite, "zfs_version").split(".")[:2])
    recorded = sorted(n for s, n in JSON_PAIRS if s == suite)
    if (major, minor) >= (2, 3):
        assert len(recorded) >= 8, recorded
    else:
        assert recorded == []


@pytest.mark.parametrize("num, text", [
    (0, "0B"), (512, "512B"), (18432, "18K"), (168960, "165K"), (1269760, "1.21M"),
    (1048576, "1M"), (10 * 1024 ** 3 + 1, "10.0G"), (123456789012, "115G"),
])
def test_nicebytes_prints_like_zpool_status(num, text):
    assert nicebytes(num) == text


def test_json_scan_states():
    assert parse_json_scan(None)["state"] == "none"
    assert parse_json_scan({"function": "NONE", "state": "NONE"})["state"] == "none"
    running = parse_json_scan({"function": "SCRUB", "state": "SCANNING", "start_time": 1795796251,
                               "end_time": 0, "processed": 0, "errors": 0, "scrub_pause": 0})
    assert (running["function"], running["state"], running["end"]) == ("scrub", "scanning", None)
    assert running["start"]
    paused = parse_json_scan({"function": "SCRUB", "state": "SCANNING", "start_time": 1795796251,
                              "scrub_pause": 1795796300})
    assert paused["state"] == "paused"
    long_scrub = parse_json_scan({"function": "SCRUB", "state": "FINISHED", "start_time": 1000,
                                  "end_time": 1000 + 2 * 86400 + 3725, "processed": 0, "errors": 3})
    assert (long_scrub["duration"], long_scrub["errors"]) == ("2 days 01:02:05", 3)
