"""selfhost.homelab.zpool's decisions, fed with outputs recorded from real OpenZFS.

Each case gives the module's input and what each command prints (recorded
fixtures), and checks the commands the module runs or would run. The same
module runs against real OpenZFS in tests/integration/zfs.
"""

import glob
import os
import time

import pytest
from ansible_collections.selfhost.homelab.plugins.module_utils import _zfs_pool
from ansible_collections.selfhost.homelab.plugins.module_utils._zfs_pool import ZpoolError, manage

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
SUITES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(FIXTURES, "*")))
# Each suite's text status, and its `zpool status -j` where it was recorded (OpenZFS 2.3+).
FORMATS = [(s, "text") for s in SUITES] + [
    (s, "json") for s in SUITES if os.path.exists(os.path.join(FIXTURES, s, "status_json_mirror.txt"))]
BY_ID = "/dev/disk/by-id/virtio-disk%d"
# The recording VM's names: disk1 -> vdb, disk2 -> vdc, ...
KERNEL = {BY_ID % i: "vd" + "bcdefg"[i - 1] for i in range(1, 7)}


class Recorded:
    """One suite's recorded outputs, with `zpool status` in one format (text or JSON)."""

    def __init__(self, suite, fmt):
        self.suite, self.fmt = suite, fmt
        self.status_cmd = "/usr/sbin/zpool status " + ("-j --json-int -P" if fmt == "json" else "-P -p")

    def __call__(self, name):
        with open(os.path.join(FIXTURES, self.suite, name + ".txt")) as f:
            return f.read()

    def status(self, name, pool="tank"):
        key = "status_json_" if self.fmt == "json" else "status_"
        return ("%s %s" % (self.status_cmd, pool), (0, self(key + name), ""))

    def missing(self, pool="tank"):
        """The recorded answer for a pool that does not exist (recorded as 'tank')."""
        name = "status_json_missing" if self.fmt == "json" else "status_missing"
        err = os.path.join(FIXTURES, self.suite, name + ".err")
        with open(err) as f:
            stderr = f.read().replace("'tank'", "'%s'" % pool)
        return ("%s %s" % (self.status_cmd, pool), (1, self(name), stderr))

    def module(self, params, outputs, **kwargs):
        return FakeModule(dict({"status_format": self.fmt}, **params), outputs, **kwargs)


@pytest.fixture(params=FORMATS, ids=["%s-%s" % f for f in FORMATS])
def rec(request):
    return Recorded(*request.param)


class FakeDevices(_zfs_pool.Devices):
    """The recording VM's disks: by-id links, /dev/vdX, and ZFS's -part1 partitions."""

    def __init__(self):
        super().__init__()
        self.links = {}
        for link, k in KERNEL.items():
            self.links[link] = "/dev/" + k
            self.links[link + "-part1"] = "/dev/%s1" % k
            self.links["/dev/%s1" % k] = "/dev/%s1" % k
            self.links["/dev/" + k] = "/dev/" + k
        self.realpath = lambda p: self.links.get(p, p)
        self.exists = self._exists

    def _exists(self, path):
        if path.startswith("/sys/class/block/"):
            return path.endswith("/partition") and path.split("/")[-2][-1].isdigit()
        return path in self.links

    def parent(self, kname):
        return kname.rstrip("0123456789")

    def partitions(self, kname):
        return []


class FakeModule:
    def __init__(self, params, outputs, check=False, diff=False):
        defaults = {"state": "present", "vdevs": None, "replace": None, "wait": False, "pool_properties": {},
                    "filesystem_properties": {}, "mountpoint": None, "altroot": None, "import_dirs": None,
                    "force": False, "confirm_destroy": None, "scrub": False, "scrub_wait": False,
                    "status_format": "text"}
        self.params = dict(defaults, **params)
        self.check_mode = check
        self._diff = diff
        self.outputs = outputs
        self.ran = []

    def get_bin_path(self, name, required=False):
        return "/usr/sbin/" + name

    def run_command(self, argv):
        self.ran.append(" ".join(argv))
        for prefix, answer in self.outputs:
            if " ".join(argv).startswith(prefix):
                return answer
        raise AssertionError("unexpected command: %s" % " ".join(argv))


@pytest.fixture(autouse=True)
def devices(monkeypatch):
    monkeypatch.setattr(_zfs_pool, "Devices", FakeDevices)


def get_all(rec):
    return ("/usr/sbin/zpool get -Hp all tank", (0, rec("get_all_mirror"), ""))


NO_IMPORT = ("/usr/sbin/zpool import", (1, "", "no pools available to import\n"))
BLANK = ("/usr/sbin/blkid", (2, "", ""))


@pytest.mark.parametrize("disks", [
    [BY_ID % 1, BY_ID % 2], ["/dev/vdc", "/dev/vdb"], ["vdb", BY_ID % 2 + "-part1"],
])
def test_unchanged_mirror_in_two_commands(rec, disks):
    m = rec.module({"name": "tank", "vdevs": [{"type": "mirror", "disks": disks}]},
                   [rec.status("mirror"), get_all(rec)])
    result = manage(m)
    assert result["changed"] is False and result["commands"] == []
    assert m.ran == [rec.status_cmd + " tank", "/usr/sbin/zpool get -Hp all tank"]
    assert result["pool"]["health"] == "ONLINE"


def test_create_in_check_mode_uses_dry_run(rec):
    m = rec.module({"name": "tank", "vdevs": [{"type": "mirror", "disks": [BY_ID % 1, BY_ID % 2]}],
                    "pool_properties": {"ashift": 12}, "filesystem_properties": {"atime": False}},
                   [rec.missing(), NO_IMPORT, BLANK, ("/usr/sbin/zpool create -n", (0, "would create 'tank'", ""))],
                   check=True, diff=True)
    result = manage(m)
    want = "/usr/sbin/zpool create -o ashift=12 -O atime=off tank mirror %s %s" % (BY_ID % 1, BY_ID % 2)
    assert result["commands"] == [want]
    assert m.ran[-1] == want.replace("create", "create -n", 1)
    assert result["changed"] is True and result["dry_run"] == ["would create 'tank'"]
    assert result["diff"]["before"] == {"state": "absent"}
    assert result["diff"]["after"]["layout"] == ["data mirror: %s, %s" % (BY_ID % 1, BY_ID % 2)]


def test_create_refused_on_zfs_label(rec):
    m = rec.module({"name": "new", "vdevs": [{"type": "mirror", "disks": [BY_ID % 1, BY_ID % 3]}]},
                   [rec.missing("new"), NO_IMPORT, ("/usr/sbin/blkid", (0, rec("blkid_exported"), ""))])
    with pytest.raises(ZpoolError) as e:
        manage(m)
    assert "ZFS label of pool 'tank'" in e.value.msg or "gpt partition table" in e.value.msg
    assert not any(" create" in c for c in m.ran)


def test_create_refused_on_ext4_and_gpt(rec):
    m = rec.module({"name": "new", "vdevs": [{"type": "mirror", "disks": [BY_ID % 1, BY_ID % 2]}]},
                   [rec.missing("new"), NO_IMPORT, ("/usr/sbin/blkid", (0, rec("blkid_ext4_gpt_blank"), ""))])
    with pytest.raises(ZpoolError) as e:
        manage(m)
    assert "ext4 signature" in e.value.msg and "gpt partition table" in e.value.msg


def test_absent_needs_confirmation(rec):
    m = rec.module({"name": "tank", "state": "absent"}, [rec.status("mirror")])
    with pytest.raises(ZpoolError) as e:
        manage(m)
    assert e.value.msg.startswith("confirm_destroy:")
    assert m.ran == [rec.status_cmd + " tank"]


def test_exported_pool_is_imported_not_created(rec):
    m = rec.module({"name": "tank", "vdevs": [{"type": "mirror", "disks": [BY_ID % 1, BY_ID % 2]}]},
                   [rec.missing(), ("/usr/sbin/zpool import", (0, rec("import_list"), ""))], check=True)
    result = manage(m)
    assert result["commands"] == ["/usr/sbin/zpool import tank"]


def test_attach_single_disk_to_mirror(rec):
    m = rec.module({"name": "tank", "vdevs": [{"type": "mirror", "disks": [BY_ID % 1, "/dev/vdc"]}]},
                   [rec.status("single"), get_all(rec), BLANK], check=True)
    result = manage(m)
    assert result["commands"] == ["/usr/sbin/zpool attach tank %s-part1 /dev/vdc" % (BY_ID % 1)]


@pytest.mark.parametrize("vdevs", [
    [{"type": "raidz1", "disks": [BY_ID % 1, BY_ID % 2, BY_ID % 3]}],
    [{"type": "stripe", "disks": [BY_ID % 1, BY_ID % 2]}],
    [{"type": "mirror", "disks": [BY_ID % 1, BY_ID % 3]}],
    [{"type": "stripe", "disks": [BY_ID % 1]}],
])
def test_layout_changes_zfs_cannot_do_are_refused(rec, vdevs):
    m = rec.module({"name": "tank", "vdevs": vdevs}, [rec.status("mirror"), get_all(rec)])
    with pytest.raises(ZpoolError):
        manage(m)
    assert len(m.ran) == 1


def test_classes_unchanged_and_new_vdev_added_with_dry_run(rec):
    vdevs = [{"type": "mirror", "disks": [BY_ID % 1, BY_ID % 2]}, {"role": "log", "disks": [BY_ID % 3]},
             {"role": "cache", "disks": [BY_ID % 4]}, {"role": "spare", "disks": [BY_ID % 5]},
             {"role": "special", "disks": [BY_ID % 6]}]
    status = rec.status("classes")
    assert manage(rec.module({"name": "tank", "vdevs": vdevs}, [status, get_all(rec)]))["changed"] is False
    with pytest.raises(ZpoolError) as e:
        manage(rec.module({"name": "tank", "vdevs": vdevs[:3]}, [status, get_all(rec)]))
    assert "not in vdevs" in e.value.msg


@pytest.mark.parametrize("suite", [s for s, fmt in FORMATS if fmt == "json"])
@pytest.mark.parametrize("name", ["mirror", "classes", "degraded", "scrubbed", "replaced", "draid"])
def test_text_and_json_status_give_the_same_pool_facts(monkeypatch, suite, name):
    """OpenZFS 2.3: the module returns the same facts whichever status format it reads."""
    monkeypatch.setenv("TZ", "UTC")  # the recording guest's zone; JSON times are epochs
    time.tzset()
    try:
        pools = []
        for fmt in ("text", "json"):
            r = Recorded(suite, fmt)
            m = r.module({"name": "tank", "state": "imported"}, [r.status(name), get_all(r)])
            result = manage(m)
            assert result["changed"] is False and m.ran[0] == r.status_cmd + " tank"
            pool = result["pool"]
            pool["scan"].pop("raw")
            pools.append(pool)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert pools[0]["guid"] and pools[0]["guid"].isdigit()
    assert pools[1] == pools[0]


@pytest.mark.parametrize("field, params, message", [
    ("name", {"name": "mirror"}, "name:"),
    ("vdevs", {"name": "t", "vdevs": [{"type": "mirror", "disks": [BY_ID % 1]}]}, "vdevs[0].disks: a mirror"),
    ("vdevs", {"name": "t", "vdevs": [{"role": "cache", "type": "mirror", "disks": [BY_ID % 1, BY_ID % 2]}]},
     "vdevs[0].type"),
    ("vdevs", {"name": "t", "vdevs": [{"disks": ["/dev/nope"]}]}, "vdevs[0].disks[0]: device /dev/nope"),
    ("vdevs", {"name": "t", "vdevs": [{"disks": [BY_ID % 1, "/dev/vdb"]}]}, "same device"),
])
def test_bad_input_fails_before_any_command(field, params, message):
    m = FakeModule(params, [])
    with pytest.raises(ZpoolError) as e:
        manage(m)
    assert message in e.value.msg and m.ran == []
