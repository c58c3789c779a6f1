"""How many zpool/zfs commands each module runs for an unchanged pool.

selfhost.homelab.zpool next to community.general.zpool, on the same real pool
in the ZFS test VM, both through ansible-playbook. Wrappers in the guest's
/usr/local/sbin log every zpool/zfs call before running the real one.
Not a test: prints numbers side by side.

    python3 benchmarks/zfs/command_count.py            # boots its own VM
    python3 benchmarks/zfs/command_count.py --state DIR  # a VM booted with zfsvm.py start DIR
    --json prints the rows as JSON for benchmarks/run.py instead of the table.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "scripts", "vm"))
import zfsvm  # noqa: E402

DISKS = ["/dev/disk/by-id/virtio-disk1", "/dev/disk/by-id/virtio-disk2"]
WRAP = """#!/bin/sh
echo "$(basename "$0") $*" >> /tmp/zfs-calls.log
exec /usr/sbin/$(basename "$0") "$@"
"""


def play(state, module, args, workdir):
    pb = [{"hosts": "all", "gather_facts": False, "tasks": [{module: args, "ignore_errors": True}]}]
    path = os.path.join(workdir, "pb.json")
    with open(path, "w") as f:
        json.dump(pb, f)
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".cache", "collections"))
    out = subprocess.run(["ansible-playbook", "-i", os.path.join(state["state_dir"], "inventory.yml"), path],
                         capture_output=True, text=True, env=env, check=False).stdout
    return json.loads(out)["plays"][0]["tasks"][0]["hosts"]["zfsvm"]


def measure(state, module, args, workdir):
    zfsvm.ssh(state, ": > /tmp/zfs-calls.log")
    result = play(state, module, args, workdir)
    calls = zfsvm.ssh(state, "cat /tmp/zfs-calls.log").stdout.splitlines()
    return result, calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    a = ap.parse_args()
    own = not a.state
    state_dir = a.state or tempfile.mkdtemp(prefix="zfs-bench-")
    state = zfsvm.load_state(state_dir) if a.state else zfsvm.start(state_dir, disks=2, disk_size="256M")
    workdir = tempfile.mkdtemp()
    try:
        zfsvm.ssh(state, "for p in $(zpool list -H -o name); do zpool destroy -f $p; done; "
                  "for c in zpool zfs; do printf '%s' '{}' > /usr/local/sbin/$c; chmod +x /usr/local/sbin/$c; done"
                  .format(WRAP.replace("'", "'\\''")))
        zfsvm.ssh(state, "/usr/sbin/zpool create bench mirror %s" % " ".join(DISKS))
        args = {"name": "bench", "vdevs": [{"type": "mirror", "disks": DISKS}]}
        rows = []
        for module in ("selfhost.homelab.zpool", "community.general.zpool"):
            result, calls = measure(state, module, args, workdir)
            outcome = "FAILED: " + result.get("msg", "")[:80] if result.get("failed") else (
                "changed" if result.get("changed") else "unchanged")
            rows.append((module, len(calls), outcome, calls))
        if a.json:
            print(json.dumps({"zfs_version": state.get("zfs_version"), "accel": state["accel"], "rows": [
                {"module": module, "commands": n, "result": outcome, "calls": calls}
                for module, n, outcome, calls in rows]}))
            return
        print("\nunchanged mirror pool 'bench' (by-id disks), one run each, OpenZFS %s, %s"
              % (state.get("zfs_version"), state["accel"].upper()))
        print("%-26s %9s  %s" % ("module", "commands", "result"))
        for module, n, outcome, _calls in rows:
            print("%-26s %9d  %s" % (module, n, outcome))
        for module, _n, _o, calls in rows:
            print("\n%s ran:\n  %s" % (module, "\n  ".join(calls) or "(nothing)"))
    finally:
        zfsvm.ssh(state, "rm -f /usr/local/sbin/zpool /usr/local/sbin/zfs; zpool destroy -f bench", check=False)
        if own:
            zfsvm.stop(state_dir)


if __name__ == "__main__":
    main()
