"""One real-OpenZFS VM per test session, shared by every test of this directory.

The module runs in the guest exactly as Ansible runs it (its JSON arguments on
stdin, `_ansible_check_mode`/`_ansible_diff` included), from a copy of
ansible.module_utils and the collection byte-compiled once on the host: an
emulated guest spends ~10 s per task recompiling AnsiballZ's sources, which
would blow the CI budget. The molecule scenario drives the same module
through ansible-playbook.

The VM (scripts/vm/zfsvm.py, image cached by scripts/bootstrap.d/zfs-vm.sh) is
booted once: the first xdist worker that needs it boots it under a file lock,
the others reuse it. Each worker owns its own six virtio disks and names its
pools after itself, so workers never touch each other's disks. Between tests
a worker resets its disks (destroy its pools, `zpool labelclear`, `wipefs`)
instead of rebooting. The last worker out stops the VM.
"""

import compileall
import fcntl
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
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
        self.runtime = None

    def pool(self, name):
        return "%s_%s" % (name, self.pool_prefix)

    def sh(self, command, check=True, timeout=300):
        return zfsvm.ssh(self.state, command, check=check, timeout=timeout)

    def push_runtime(self):
        """ansible.module_utils + this collection's plugins, byte-compiled, to /opt/homelab-test/<worker>."""
        import ansible

        staging = os.path.join(self.workdir, "runtime")
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(os.path.join(staging, "ansible"))
        open(os.path.join(staging, "ansible", "__init__.py"), "w").close()
        shutil.copytree(os.path.join(os.path.dirname(ansible.__file__), "module_utils"),
                        os.path.join(staging, "ansible", "module_utils"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        coll = os.path.join(staging, "ansible_collections", "selfhost", "homelab", "plugins")
        for sub in ("modules", "module_utils"):
            shutil.copytree(os.path.join(REPO, "plugins", sub), os.path.join(coll, sub),
                            ignore=shutil.ignore_patterns("__pycache__"))
        guest_py = self.sh("python3 -c 'import sys; print(sys.version_info[:2])'").stdout.strip()
        if guest_py == str(sys.version_info[:2]):
            compileall.compile_dir(staging, quiet=1)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(staging, arcname=".")
        self.runtime = "/opt/homelab-test/%s" % self.worker
        proc = subprocess.run(zfsvm._ssh_base(self.state) + [
            "rm -rf {0} && mkdir -p {0} && tar -xzf - -C {0}".format(self.runtime)],
            input=buf.getvalue(), capture_output=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr

    def zpool(self, args, check=False, diff=False):
        """Run selfhost.homelab.zpool once in the guest; return its result (failures included)."""
        payload = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
        r = zfsvm.ssh(self.state, "cd %s && PYTHONPATH=. python3 -m "
                      "ansible_collections.selfhost.homelab.plugins.modules.zpool" % self.runtime,
                      check=False, stdin=json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
        try:
            result = json.loads(r.stdout)
        except ValueError:
            raise AssertionError("zpool module gave no JSON (rc %d):\n%s\n%s" % (r.returncode, r.stdout, r.stderr))
        result.setdefault("changed", False)
        return result

    def play(self, tasks, check=False, diff=False):
        """Run several zpool tasks one after the other ({"selfhost.homelab.zpool": args})."""
        return [self.zpool(t["selfhost.homelab.zpool"], check=check, diff=diff) for t in tasks]

    def setup(self, command):
        """Prepare a case with zpool/zfs commands. `zpool create` right after the disks
        were wiped can meet udev still probing the new partition ("one or more devices
        is currently unavailable"): settle and retry."""
        for attempt in range(3):
            r = self.sh(command, check=False)
            if r.returncode == 0 or "currently unavailable" not in r.stderr or attempt == 2:
                break
            self.sh("udevadm settle; sleep 2")
        assert r.returncode == 0, "setup failed: %s\n%s%s" % (command, r.stdout, r.stderr)
        return r

    def pools(self):
        return self.sh("zpool list -H -o name").stdout.split()

    def reset(self):
        """Destroy this worker's pools and wipe its disks: labels, partition tables, signatures."""
        script = textwrap.dedent("""
            set -e
            for p in $(zpool list -H -o name); do
              case "$p" in *_{prefix}) zpool destroy -f "$p" ;; esac
            done
            udevadm settle
            for d in {disks}; do
              # blank already (no signature, no partition): nothing to do
              [ -z "$(blkid -p -o value -s TYPE -s PTTYPE $d 2>/dev/null)" ] && ! ls ${{d}}[0-9]* >/dev/null 2>&1 \
                && continue
              for part in $(ls ${{d}}[0-9]* 2>/dev/null); do
                zpool labelclear -f "$part" 2>/dev/null || true
                wipefs -aq "$part" 2>/dev/null || true
              done
              zpool labelclear -f "$d" 2>/dev/null || true
              # udev probes a disk after every change and holds it open for a moment
              for try in 1 2 3 4 5 6 7 8 9 10; do wipefs -aq "$d" 2>/dev/null && break; sleep 1; done
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
        vm = ZfsVm(zfsvm.load_state(reuse), 0, worker_id, workdir)
        vm.push_runtime()
        yield vm
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
    vm.push_runtime()
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
