"""One real-OpenZFS VM per test session, shared by every test of this directory.

The VM (scripts/vm/zfsvm.py, image cached by scripts/bootstrap.d/zfs-vm.sh) is
booted once: the first xdist worker that needs it boots it under a file lock,
the others reuse it. Each worker owns its own six virtio disks and names its
pools after itself, so workers never touch each other's disks. Between tests
a worker resets its disks (destroy its pools, `zpool labelclear`, `wipefs`)
instead of rebooting. The last worker out stops the VM.
"""

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(REPO, "scripts", "vm"))
import zfsvm  # noqa: E402

DISKS_PER_WORKER = 6


class ZfsVm:
    def __init__(self, state, index, worker, workdir):
        self.state = state
        self.worker = worker
        self.workdir = workdir
        first = index * DISKS_PER_WORKER
        self.serials = state["disks"][first:first + DISKS_PER_WORKER]
        # /dev/disk/by-id/virtio-diskN in the guest; kernel names /dev/vdX are looked up once.
        self.by_id = ["/dev/disk/by-id/virtio-%s" % s for s in self.serials]
        out = self.sh("for d in %s; do readlink -f $d; done" % " ".join(self.by_id)).stdout.split()
        self.kernel = out
        paths = self.sh("ls -l /dev/disk/by-path/ | awk '/-> /{print $9, $11}'").stdout.splitlines()
        by_path = {}
        for line in paths:
            name, target = line.split()
            if "part" not in name:
                by_path["/dev/" + os.path.basename(target)] = "/dev/disk/by-path/" + name
        self.by_path = [by_path.get(k) for k in self.kernel]
        self.pool_prefix = "t" + worker.replace("gw", "")

    def pool(self, name):
        return "%s_%s" % (name, self.pool_prefix)

    def sh(self, command, check=True, timeout=300):
        return zfsvm.ssh(self.state, command, check=check, timeout=timeout)

    def play(self, tasks, check=False, diff=False):
        """Run TASKS (dicts) in one play on the VM; return the list of task results."""
        playbook = [{"hosts": "all", "gather_facts": False, "tasks": tasks}]
        fd, path = tempfile.mkstemp(suffix=".yml", dir=self.workdir)
        with os.fdopen(fd, "w") as f:
            json.dump(playbook, f)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json",
                   ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_NOCOLOR="1", ANSIBLE_GALAXY_SERVER_LIST="",
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".cache", "collections"),
                   ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(self.workdir, "cp"))
        argv = ["ansible-playbook", "-i", os.path.join(self.state["state_dir"], "inventory.yml"), path]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError("ansible-playbook gave no JSON (rc %d):\n%s\n%s" % (
                proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
        results = []
        for task in data["plays"][0]["tasks"]:
            res = task["hosts"].get("zfsvm", {})
            results.append(res)
            if res.get("unreachable"):
                raise AssertionError("VM unreachable: %s" % res)
        return results

    def zpool(self, args, check=False, diff=False, **task_opts):
        """Run selfhost.homelab.zpool once; return its result (failures included)."""
        task = {"name": "zpool", "selfhost.homelab.zpool": args, "ignore_errors": True}
        task.update(task_opts)
        return self.play([task], check=check, diff=diff)[0]

    def pools(self):
        return self.sh("zpool list -H -o name").stdout.split()

    def reset(self):
        """Destroy this worker's pools and wipe its disks: labels, partition tables, signatures."""
        script = textwrap.dedent("""
            set -e
            for p in $(zpool list -H -o name); do
              case "$p" in *_{prefix}) zpool destroy -f "$p" ;; esac
            done
            for d in {disks}; do
              for part in $(ls ${{d}}[0-9]* 2>/dev/null); do
                zpool labelclear -f "$part" 2>/dev/null || true
                wipefs -aq "$part" 2>/dev/null || true
              done
              zpool labelclear -f "$d" 2>/dev/null || true
              wipefs -aq "$d"
            done
            udevadm settle
        """).format(prefix=self.pool_prefix, disks=" ".join(self.kernel))
        self.sh(script)


def _shared_dir(tmp_path_factory, worker):
    base = tmp_path_factory.getbasetemp()
    return base.parent if worker != "master" else base


@pytest.fixture(scope="session")
def zfs_vm(tmp_path_factory, worker_id):
    reuse = os.environ.get("HOMELAB_ZFS_VM_STATE")
    if reuse:
        # A VM you booted yourself (zfsvm.py start DIR): used, never stopped.
        workdir = str(tmp_path_factory.mktemp("zfsvm-%s" % worker_id))
        os.makedirs(os.path.join(workdir, "cp"), exist_ok=True)
        yield ZfsVm(zfsvm.load_state(reuse), 0, worker_id, workdir)
        return
    shared = _shared_dir(tmp_path_factory, worker_id)
    state_dir = os.path.join(str(shared), "zfsvm")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker_id[2:]) if worker_id.startswith("gw") else 0
    os.makedirs(state_dir, exist_ok=True)
    lock_path = os.path.join(state_dir, "lock")
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        users_path = os.path.join(state_dir, "users")
        users = int(open(users_path).read()) if os.path.exists(users_path) else 0
        alive = False
        if users > 0:
            try:
                st = zfsvm.load_state(state_dir)
                os.killpg(st["pid"], 0)
                alive = True
            except (OSError, KeyError, ValueError):
                alive = False
        if not alive:
            began = time.time()
            state = zfsvm.start(state_dir, suite=os.environ.get("HOMELAB_ZFS_VM_SUITE", "bookworm"),
                                disks=DISKS_PER_WORKER * max(workers, 1), disk_size="256M")
            print("\nzfs VM: booted with %s in %.0fs (OpenZFS %s)" % (
                state["accel"].upper(), time.time() - began, state["zfs_version"]), file=sys.stderr)
            users = 0
        with open(users_path, "w") as f:
            f.write(str(users + 1))
        state = zfsvm.load_state(state_dir)
    workdir = str(tmp_path_factory.mktemp("zfsvm-%s" % worker_id))
    os.makedirs(os.path.join(workdir, "cp"), exist_ok=True)
    vm = ZfsVm(state, index, worker_id, workdir)
    yield vm
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        users = int(open(users_path).read()) - 1
        with open(users_path, "w") as f:
            f.write(str(users))
        if users <= 0:
            zfsvm.stop(state_dir)


@pytest.fixture
def vm(zfs_vm):
    """The shared VM with this worker's disks blank again."""
    zfs_vm.reset()
    yield zfs_vm
