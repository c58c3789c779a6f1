"""Record the textfile metrics of the zfs role and of Debian's smartmon collector
on real OpenZFS and a real (emulated) SATA disk, for the monitoring tests.

Boots the project's OpenZFS test VM (scripts/vm/zfsvm.py, Debian 12, OpenZFS
2.1) with two blank virtio disks plus one SATA disk on an AHCI controller
(QEMU answers SMART commands for it), then in the guest:
  - creates the mirror pool `tank`, writes data, scrubs it, and runs the zfs
    role's exporter (roles/zfs/files/homelab-zfs-metrics with the collection's
    parser) -> zfs-online.prom;
  - takes one mirror disk offline and runs it again -> zfs-degraded.prom;
  - runs Debian 12's smartmon.sh (prometheus-node-exporter-collectors) with
    Debian 12's smartctl -> smartmon.prom.
The files land in tests/integration/monitoring/fixtures/textfile/, where the
tests serve them through a real node-exporter's textfile collector.

Needs scripts/bootstrap.d/zfs-vm.sh (the VM image) and
scripts/bootstrap.d/monitoring.sh (smartctl, smartmon.sh). Usage:
    python3 scripts/monitoring/record-textfiles.py [OUTDIR]
"""
import base64
import os
import stat
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "scripts", "vm"))
import zfsvm  # noqa: E402

CACHE = zfsvm.cache_dir()
BIN = os.path.join(CACHE, "monitoring", "bin")


def put(state, path, data, mode="0644"):
    """Copy DATA (bytes) to PATH in the guest."""
    zfsvm.ssh(state, "mkdir -p %s && base64 -d > %s && chmod %s %s"
              % (os.path.dirname(path), path, mode, path), stdin=base64.b64encode(data).decode())


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="monitoring-record-")
    sata = os.path.join(work, "sata1.img")
    with open(sata, "wb") as f:
        f.truncate(256 << 20)
    # zfsvm builds QEMU's command line; one SATA disk more goes through a wrapper.
    real_qemu = zfsvm.qemu_binary()
    wrapper = os.path.join(work, "qemu-with-sata")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec %s "$@" -device ahci,id=ahci0 '
                '-drive file=%s,format=raw,if=none,id=sata1 -device ide-hd,drive=sata1,bus=ahci0.0,'
                'serial=HOMELABSATA1,model=HOMELAB-SATA\n' % (real_qemu, sata))
    os.chmod(wrapper, stat.S_IRWXU)
    zfsvm.qemu_binary = lambda: wrapper
    state_dir = os.path.join(work, "vm")
    state = zfsvm.start(state_dir, disks=2, disk_size="256M")
    try:
        put(state, "/opt/rec/homelab-zfs-metrics",
            open(os.path.join(REPO, "roles", "zfs", "files", "homelab-zfs-metrics"), "rb").read())
        put(state, "/opt/rec/_zfs_parse.py",
            open(os.path.join(REPO, "plugins", "module_utils", "_zfs_parse.py"), "rb").read())
        put(state, "/usr/sbin/smartctl", open(os.path.join(BIN, "smartctl"), "rb").read(), "0755")
        put(state, "/opt/rec/smartmon.sh", open(os.path.join(BIN, "smartmon.sh"), "rb").read(), "0755")
        disks = " ".join("/dev/disk/by-id/virtio-%s" % d for d in state["disks"])
        zfsvm.ssh(state, "zpool create -f tank mirror %s && dd if=/dev/urandom of=/tank/data bs=1M count=32 "
                         "status=none && sync && zpool scrub -w tank" % disks, timeout=600)
        zfsvm.ssh(state, "python3 /opt/rec/homelab-zfs-metrics /opt/rec/zfs-online.prom")
        zfsvm.ssh(state, "zpool offline tank /dev/disk/by-id/virtio-%s-part1" % state["disks"][1])
        zfsvm.ssh(state, "python3 /opt/rec/homelab-zfs-metrics /opt/rec/zfs-degraded.prom")
        zfsvm.ssh(state, "bash /opt/rec/smartmon.sh > /opt/rec/smartmon.prom")
        for name in ("zfs-online.prom", "zfs-degraded.prom", "smartmon.prom"):
            text = zfsvm.ssh(state, "cat /opt/rec/%s" % name).stdout
            with open(os.path.join(outdir, name), "w") as f:
                f.write("# Recorded by scripts/monitoring/record-textfiles.py on %s, Debian %s VM, %s, "
                        "kernel %s\n" % (time.strftime("%Y-%m-%d"), state["suite"], state.get("zfs_version"),
                                         state.get("kernel")))
                f.write(text)
            print("recorded %s (%d lines)" % (name, text.count("\n")))
    finally:
        zfsvm.stop(state_dir)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(REPO, "tests", "integration", "monitoring", "fixtures", "textfile"))
