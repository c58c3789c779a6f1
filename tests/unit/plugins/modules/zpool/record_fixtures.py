"""Record real OpenZFS outputs for the unit tests (never write fixtures by hand).

Boots the test VM (scripts/vm/zfsvm.py) for SUITE, builds pools of every kind
on its blank virtio disks and saves what `zpool`/`zfs`/`blkid` print into
fixtures/<suite>/<name>.txt (stdout; `.err` for stderr). On OpenZFS 2.3+
(Debian 13) it records `zpool status -j` too.

    python3 tests/unit/plugins/modules/zpool/record_fixtures.py --suite bookworm
    python3 tests/unit/plugins/modules/zpool/record_fixtures.py --suite trixie
    ... --state DIR   record on a VM you already booted (zfsvm.py start DIR --disks 6)
"""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "scripts", "vm"))
import zfsvm  # noqa: E402

D = ["/dev/disk/by-id/virtio-disk%d" % i for i in range(1, 7)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default="bookworm")
    ap.add_argument("--state", help="state dir of a running VM to use instead of booting one")
    args = ap.parse_args()
    own = not args.state
    state_dir = args.state or tempfile.mkdtemp(prefix="zfs-record-")
    state = zfsvm.load_state(state_dir) if args.state else zfsvm.start(state_dir, args.suite, disks=6,
                                                                       disk_size="256M")
    out = os.path.join(HERE, "fixtures", state["suite"])
    os.makedirs(out, exist_ok=True)
    json_ok = zfsvm.ssh(state, "zpool status -j >/dev/null 2>&1", check=False).returncode == 0

    def sh(cmd):
        return zfsvm.ssh(state, cmd)

    def save(name, cmd, ok_rc=(0,)):
        r = zfsvm.ssh(state, cmd, check=False)
        if r.returncode not in ok_rc:
            raise SystemExit("recording %s: %s failed (rc %d): %s" % (name, cmd, r.returncode, r.stderr))
        with open(os.path.join(out, name + ".txt"), "w") as f:
            f.write(r.stdout)
        if r.stderr:
            with open(os.path.join(out, name + ".err"), "w") as f:
                f.write(r.stderr)
        print("recorded %s/%s (%s)" % (state["suite"], name, cmd))

    def status(name, pool="tank"):
        save("status_" + name, "zpool status -P -p %s" % pool)
        if json_ok:
            save("status_json_" + name, "zpool status -j --json-int -P %s" % pool)

    def reset():
        sh("for p in $(zpool list -H -o name); do zpool destroy -f $p; done; "
           "for d in %s; do for p in $(ls ${d}-part* 2>/dev/null); do zpool labelclear -f $p || true; "
           "wipefs -aq $p || true; done; zpool labelclear -f $d 2>/dev/null || true; wipefs -aq $d; done; "
           "udevadm settle" % " ".join(D))

    try:
        reset()
        save("zfs_version", "cat /sys/module/zfs/version; zfs version")
        save("status_missing", "zpool status -P -p tank", ok_rc=(1,))
        if json_ok:
            save("status_json_missing", "zpool status -j --json-int -P tank", ok_rc=(1,))
        sh("zpool create -O compression=lz4 -m /srv/tank tank mirror %s %s" % (D[0], D[1]))
        status("mirror")
        save("get_all_mirror", "zpool get -Hp all tank")
        save("zfs_get_mirror", "zfs get -Hp -o property,value,source compression,mountpoint,atime tank")
        sh("zpool scrub -w tank")
        status("scrubbed")
        sh("zpool offline tank %s-part1" % D[1])
        status("degraded")
        save("list_degraded", "zpool list -Hp -o name,health,size,allocated,free,capacity,fragmentation")
        sh("zpool online tank %s-part1" % D[1])
        sh("zpool add -f tank log %s cache %s spare %s special %s" % (D[2], D[3], D[4], D[5]))
        status("classes")
        sh("zpool export tank")
        save("import_list", "zpool import")
        save("blkid_exported", "blkid -p -o export $(readlink -f %s) $(readlink -f %s-part1) $(readlink -f %s)"
             % (D[0], D[0], D[2]), ok_rc=(0, 2))
        sh("zpool import tank")
        reset()
        sh("zpool create tank raidz2 %s" % " ".join(D[:4]))
        status("raidz2")
        reset()
        sh("zpool create tank draid1:2d:4c:1s %s" % " ".join(D[:4]))
        status("draid")
        reset()
        sh("zpool create tank %s" % D[0])
        status("single")
        sh("zpool attach tank %s-part1 %s" % (D[0], D[1]))
        sh("zpool replace -w tank %s-part1 %s" % (D[1], D[2]))
        status("replaced")
        reset()
        sh("mkfs.ext4 -q %s && sgdisk -n1:0:+32M %s >/dev/null && udevadm settle" % (D[0], D[1]))
        save("blkid_ext4_gpt_blank", "blkid -p -o export $(readlink -f %s) $(readlink -f %s) "
             "$(readlink -f %s)1 $(readlink -f %s)" % (D[0], D[1], D[1], D[2]), ok_rc=(0, 2))
        reset()
        save("import_none", "zpool import", ok_rc=(0, 1))
    finally:
        if own:
            zfsvm.stop(state_dir)


if __name__ == "__main__":
    main()
