"""selfhost.homelab.zpool against real OpenZFS in the test VM.

Every case starts from blank disks (fixture `vm`). Data-safety cases check
both the module's answer and the disks afterwards.
"""

import pytest


def mirror(disks):
    return [{"type": "mirror", "disks": disks}]


def layout(result, role="data"):
    return [(v["type"], len(v["devices"])) for v in result["pool"]["layout"][role]]


def assert_ok(result, changed):
    assert not result.get("failed"), result.get("msg", result)
    assert result["changed"] is changed, result


def test_create_mirror_by_id_is_idempotent_with_any_spelling(vm):
    name = vm.pool("tank")
    d1, d2 = vm.by_id[0], vm.by_id[1]
    args = {"name": name, "vdevs": mirror([d1, d2]), "filesystem_properties": {"compression": "lz4"}}
    check = vm.zpool(args, check=True, diff=True)
    assert_ok(check, True)
    assert "would create '%s'" % name in check["dry_run"][0]
    assert check["commands"][0].endswith("create -O compression=lz4 %s mirror %s %s" % (name, d1, d2))
    assert check["diff"]["before"] == {"state": "absent"}
    assert name not in vm.pools(), "check mode created the pool"

    results = vm.play([
        {"selfhost.homelab.zpool": args},
        {"selfhost.homelab.zpool": args},
        # the same disks as /dev/vdX, and as /dev/disk/by-path
        {"selfhost.homelab.zpool": dict(args, vdevs=mirror([vm.kernel[0], vm.kernel[1]]))},
        {"selfhost.homelab.zpool": dict(args, vdevs=mirror([vm.by_path[1], vm.by_path[0]]))},
    ])
    created, again, as_vdx, as_path = results
    assert_ok(created, True)
    assert created["pool"]["state"] == "ONLINE"
    assert layout(created) == [("mirror", 2)]
    # ZFS stores whole disks as their first partition: the anchor's #10771
    assert created["pool"]["layout"]["data"][0]["devices"][0]["path"] == d1 + "-part1"
    for r in (again, as_vdx, as_path):
        assert_ok(r, False)
        assert r["commands"] == []
    assert vm.sh("zfs get -H -o value compression %s" % name).stdout.strip() == "lz4"


def test_create_refused_on_disk_with_another_pools_label(vm):
    other, name = vm.pool("other"), vm.pool("tank")
    d = vm.by_id
    vm.setup("zpool create %s %s && zfs create %s/keep && echo precious > /%s/keep/file && zpool export %s"
             % (other, d[2], other, other, other))
    r = vm.zpool({"name": name, "vdevs": mirror([d[2], d[3]])})
    assert r.get("failed"), r
    assert "ZFS label of pool '%s'" % other in r["msg"]
    assert "Nothing was changed" in r["msg"]
    assert name not in vm.pools()
    # the exported pool is intact and importable. Import from the by-id directory
    # after udev settles: the default search goes through blkid's cache, which can
    # miss a partition that udev is still re-probing while another worker wipes disks.
    vm.sh("udevadm settle && zpool import -d /dev/disk/by-id %s" % other)
    assert vm.sh("cat /%s/keep/file" % other).stdout.strip() == "precious"

    # a destroyed pool's label too (zpool create itself would reuse that disk silently)
    vm.sh("zpool destroy %s" % other)
    r = vm.zpool({"name": name, "vdevs": mirror([d[2], d[3]])})
    assert r.get("failed") and "ZFS label of pool '%s'" % other in r["msg"], r
    r = vm.zpool({"name": name, "vdevs": mirror([d[2], d[3]])}, check=True)
    assert r.get("failed"), "check mode must refuse as well"

    r = vm.zpool({"name": name, "vdevs": mirror([d[2], d[3]]), "force": True})
    assert_ok(r, True)
    assert "-f" in r["commands"][0].split()


def test_create_refused_on_partition_table_and_filesystem(vm):
    name = vm.pool("tank")
    d = vm.by_id
    vm.setup("mkfs.ext4 -q -L family %s && sgdisk -n1:0:+32M %s >/dev/null && udevadm settle" % (d[4], d[5]))
    r = vm.zpool({"name": name, "vdevs": mirror([d[4], d[5]])})
    assert r.get("failed"), r
    assert "ext4 signature" in r["msg"] and "gpt partition table" in r["msg"], r["msg"]
    assert name not in vm.pools()
    assert vm.sh("blkid -p -o value -s TYPE %s" % d[4]).stdout.strip() == "ext4"
    # the same when the disk is written as /dev/vdX or added to an existing pool
    vm.setup("zpool create %s %s" % (name, d[0]))
    r = vm.zpool({"name": name, "vdevs": [{"disks": [d[0], vm.kernel[4]]}]})
    assert r.get("failed") and "ext4 signature" in r["msg"], r
    assert layout(vm.zpool({"name": name})) == [("disk", 1)]


def test_absent_needs_confirmation_and_refuses_busy_pool(vm):
    name = vm.pool("tank")
    vm.setup("zpool create %s %s" % (name, vm.by_id[0]))
    no_confirm, wrong = vm.play([
        {"selfhost.homelab.zpool": {"name": name, "state": "absent"}, "ignore_errors": True},
        {"selfhost.homelab.zpool": {"name": name, "state": "absent", "confirm_destroy": "tank"},
         "ignore_errors": True},
    ])
    for r in (no_confirm, wrong):
        assert r.get("failed") and "confirm_destroy" in r["msg"], r
    assert name in vm.pools()

    # a process working inside the pool keeps it busy
    vm.sh("cd /%s && (nohup sleep 600 >/dev/null 2>&1 &) && sleep 0.5" % name)
    args = {"name": name, "state": "absent", "confirm_destroy": name}
    busy = vm.zpool(args)
    assert busy.get("failed") and "busy" in busy["msg"], busy
    assert name in vm.pools()
    vm.sh("pkill -f 'sleep 600'")

    check = vm.zpool(args, check=True)
    assert_ok(check, True)
    assert name in vm.pools()
    gone, again = vm.play([{"selfhost.homelab.zpool": args}, {"selfhost.homelab.zpool": args}])
    assert_ok(gone, True)
    assert_ok(again, False)
    assert name not in vm.pools()


def test_present_imports_an_exported_pool_instead_of_creating(vm):
    name = vm.pool("tank")
    args = {"name": name, "vdevs": mirror(vm.by_id[:2])}
    vm.setup("zpool create %s mirror %s %s && echo photos > /%s/album" % (name, vm.by_id[0], vm.by_id[1], name))
    exported, again = vm.play([
        {"selfhost.homelab.zpool": {"name": name, "state": "exported"}},
        {"selfhost.homelab.zpool": {"name": name, "state": "exported"}},
    ])
    assert_ok(exported, True)
    assert_ok(again, False)
    assert name not in vm.pools()

    check = vm.zpool(args, check=True)
    assert_ok(check, True)
    assert [c.split()[1] for c in check["commands"]] == ["import"]
    imported = vm.zpool(args)
    assert_ok(imported, True)
    assert [c.split()[1] for c in imported["commands"]] == ["import"]
    assert vm.sh("cat /%s/album" % name).stdout.strip() == "photos"
    assert_ok(vm.zpool({"name": name, "state": "imported"}), False)


def test_attach_turns_single_disk_into_mirror_and_replace(vm):
    name = vm.pool("tank")
    d = vm.by_id
    vm.setup("zpool create %s %s" % (name, d[0]))
    want = {"name": name, "vdevs": mirror([d[0], d[1]]), "wait": True}
    check = vm.zpool(want, check=True)
    assert_ok(check, True)
    assert check["commands"] == ["/usr/sbin/zpool attach -w %s %s-part1 %s" % (name, d[0], d[1])]
    assert layout(vm.zpool({"name": name})) == [("disk", 1)]
    attached, again = vm.play([{"selfhost.homelab.zpool": want}, {"selfhost.homelab.zpool": want}])
    assert_ok(attached, True)
    assert layout(attached) == [("mirror", 2)]
    assert_ok(again, False)

    # replace d1 by d2 (given as /dev/vdX): runs once
    rep = dict(want, vdevs=mirror([d[0], d[2]]), replace=[{"old": d[1], "new": vm.kernel[2]}])
    replaced, again = vm.play([{"selfhost.homelab.zpool": rep}, {"selfhost.homelab.zpool": rep}])
    assert_ok(replaced, True)
    assert "replace" in replaced["commands"][0]
    paths = [x["path"] for x in replaced["pool"]["layout"]["data"][0]["devices"]]
    assert paths == [d[0] + "-part1", vm.kernel[2] + "1"]
    assert_ok(again, False)


def test_type_change_is_refused_and_nothing_changes(vm):
    name = vm.pool("tank")
    d = vm.by_id
    vm.setup("zpool create %s mirror %s %s" % (name, d[0], d[1]))
    r = vm.zpool({"name": name, "vdevs": [{"type": "raidz1", "disks": d[:3]}]})
    assert r.get("failed") and "cannot change" in r["msg"], r
    r = vm.zpool({"name": name, "vdevs": [{"type": "stripe", "disks": d[:2]}]})
    assert r.get("failed") and "cannot change" in r["msg"], r
    r = vm.zpool({"name": name, "vdevs": [{"type": "mirror", "disks": [d[0]]}]})
    assert r.get("failed"), r
    assert layout(vm.zpool({"name": name})) == [("mirror", 2)]


def test_classes_add_vdev_properties_and_scrub(vm):
    name = vm.pool("tank")
    d = vm.by_id
    vdevs = [{"type": "mirror", "disks": d[:2]}, {"role": "log", "disks": [d[2]]},
             {"role": "cache", "disks": [d[3]]}, {"role": "spare", "disks": [d[4]]}]
    args = {"name": name, "vdevs": vdevs, "pool_properties": {"autotrim": "on"},
            "filesystem_properties": {"atime": "off", "recordsize": "64K"}, "mountpoint": "/srv/" + name}
    created, again = vm.play([{"selfhost.homelab.zpool": args}, {"selfhost.homelab.zpool": args}])
    assert_ok(created, True)
    assert_ok(again, False)
    p = again["pool"]
    assert [layout(again, r) for r in ("data", "log", "cache", "spare")] == [
        [("mirror", 2)], [("disk", 1)], [("disk", 1)], [("disk", 1)]]
    assert p["properties"]["autotrim"] == "on"
    assert vm.sh("zfs get -Hp -o value recordsize,mountpoint %s" % name).stdout.split() == ["65536", "/srv/" + name]

    # change a property and add a special vdev: diff shows both, check mode changes nothing
    more = dict(args, vdevs=vdevs + [{"role": "special", "disks": [d[5]]}], pool_properties={"autotrim": "off"})
    check = vm.zpool(dict(more, force=True), check=True, diff=True)
    assert_ok(check, True)
    assert check["diff"]["before"]["pool_properties"] == {"autotrim": "on"}
    assert check["diff"]["after"]["pool_properties"] == {"autotrim": "off"}
    assert any("would update" in out for out in check["dry_run"]), check["dry_run"]
    assert vm.sh("zpool get -H -o value autotrim %s" % name).stdout.strip() == "on"
    # a single-disk special vdev in a mirrored pool is a mismatched replication level: zpool wants -f
    applied = vm.zpool(dict(more, force=True), diff=True)
    assert_ok(applied, True)
    assert layout(applied, "special") == [("disk", 1)]
    assert applied["pool"]["properties"]["autotrim"] == "off"

    scrub = vm.zpool({"name": name, "scrub": True, "scrub_wait": True})
    assert_ok(scrub, True)
    assert scrub["pool"]["scan"]["function"] == "scrub"
    assert scrub["pool"]["scan"]["state"] == "finished"
    assert scrub["pool"]["scan"]["errors"] == 0


@pytest.mark.parametrize("vdev", [
    {"type": "raidz2", "n": 4},
    {"type": "draid1", "n": 4, "draid_data": 2, "draid_spares": 1},
])
def test_raidz_and_draid(vm, vdev):
    name = vm.pool("tank")
    spec = {k: v for k, v in vdev.items() if k != "n"}
    spec["disks"] = vm.by_id[:vdev["n"]]
    args = {"name": name, "vdevs": [spec]}
    created, again = vm.play([{"selfhost.homelab.zpool": args}, {"selfhost.homelab.zpool": args}])
    assert_ok(created, True)
    assert_ok(again, False)
    assert again["pool"]["layout"]["data"][0]["type"] == vdev["type"]
