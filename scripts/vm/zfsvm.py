"""Boot, reach and stop the real-OpenZFS test VM (stdlib only).

The image comes from scripts/vm/build-image.sh and is cached by
scripts/bootstrap.d/zfs-vm.sh under $HOMELAB_CACHE/vm/zfs-<suite>-<recipe hash>.
One boot serves a whole test session: the guest gets blank virtio disks with
serials (/dev/disk/by-id/virtio-<serial> in the guest), its SSH port is
forwarded to 127.0.0.1:<free port>, and QEMU's user network is restricted (the
guest reaches nothing outside). KVM is used only when a probe shows it really
boots a kernel here; otherwise software emulation (TCG). Which one is printed.

    zfsvm.py recipe-hash
    zfsvm.py start STATE_DIR [--suite bookworm] [--disks 6] [--disk-size 512M]
    zfsvm.py stop STATE_DIR
    zfsvm.py ssh STATE_DIR -- COMMAND...
"""
import argparse
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = [os.path.join(HERE, "build-image.sh"), os.path.join(HERE, "vm.packages")]
SUITES = {"bookworm": "12", "trixie": "13", "12": "12", "13": "13"}
SUITE_NAMES = {"12": "bookworm", "13": "trixie"}


def log(msg):
    print("[zfsvm %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("HOMELAB_CACHE") or os.path.join(base, "selfhost-homelab")


def recipe_hash():
    h = hashlib.sha256()
    for path in RECIPE:
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:12]


def suite_name(suite):
    return SUITE_NAMES.get(SUITES.get(suite, ""), suite)


def image_dir(suite="bookworm"):
    """The cached image for SUITE, or a RuntimeError saying how to build it."""
    path = os.path.join(cache_dir(), "vm", "zfs-%s-%s" % (suite_name(suite), recipe_hash()))
    if not os.path.exists(os.path.join(path, ".complete")):
        raise RuntimeError(
            "ZFS VM image %s is missing: run scripts/bootstrap.sh (or "
            "HOMELAB_ZFS_VM_SUITES=%s bash scripts/bootstrap.d/zfs-vm.sh)" % (path, suite_name(suite))
        )
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_binary():
    path = shutil.which("qemu-system-x86_64")
    if not path:
        raise RuntimeError("qemu-system-x86_64 not found: install qemu-system-x86 (requirements/apt.txt)")
    return path


def _kvm_probe(image):
    """Boot the image's kernel under KVM with no root disk: a kernel that runs
    panics ("VFS: Unable to mount root fs") within seconds and QEMU exits
    (-no-reboot). On hosts where KVM guests hang, nothing comes within the
    bound and TCG is used."""
    cmd = [qemu_binary(), "-accel", "kvm", "-m", "256", "-nographic", "-no-reboot", "-nodefaults",
           "-serial", "stdio", "-kernel", os.path.join(image, "vmlinuz"),
           "-append", "console=ttyS0 panic=-1 root=/dev/nowhere edd=off"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=15, text=True, errors="replace", check=False)
    except subprocess.TimeoutExpired:
        return False, "kernel did not run within 15s under KVM"
    out = proc.stdout + proc.stderr
    if "Kernel panic" in out or "VFS:" in out:
        return True, "KVM probe booted a kernel"
    return False, "KVM probe failed (rc %s): %s" % (proc.returncode, out.strip().splitlines()[-1:] or "")


def choose_accel(image):
    """Return (accel, why). HOMELAB_VM_ACCEL=kvm|tcg forces one; auto probes,
    and the answer is cached per host kernel + QEMU version."""
    forced = os.environ.get("HOMELAB_VM_ACCEL", "auto")
    if forced in ("kvm", "tcg"):
        return forced, "forced by HOMELAB_VM_ACCEL"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "/dev/kvm not usable"
    qver = subprocess.run([qemu_binary(), "--version"], capture_output=True, text=True,
                          check=False).stdout.split("\n")[0]
    key = hashlib.sha256(("%s|%s" % (os.uname().release, qver)).encode()).hexdigest()[:12]
    memo = os.path.join(cache_dir(), "vm", "accel-%s.json" % key)
    try:
        with open(memo) as f:
            data = json.load(f)
        return data["accel"], data["why"] + " (cached probe)"
    except (OSError, ValueError, KeyError):
        pass
    ok, why = _kvm_probe(image)
    accel = "kvm" if ok else "tcg"
    os.makedirs(os.path.dirname(memo), exist_ok=True)
    with open(memo, "w") as f:
        json.dump({"accel": accel, "why": why}, f)
    return accel, why


def _ssh_base(state):
    return ["ssh", "-p", str(state["port"]), "-i", state["key"],
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            # One login, reused: each new SSH handshake costs seconds in an emulated guest.
            "-o", "ControlMaster=auto", "-o", "ControlPath=/tmp/zfsvm-cm-%C", "-o", "ControlPersist=300",
            "root@127.0.0.1"]


def ssh(state, command, check=True, timeout=300, stdin=None):
    """Run COMMAND (a string, run by the guest's shell) as root in the guest."""
    proc = subprocess.run(_ssh_base(state) + [command], capture_output=True, text=True,
                          timeout=timeout, input=stdin, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("guest command failed (rc %d): %s\n%s%s" % (
            proc.returncode, command, proc.stdout, proc.stderr))
    return proc


def load_state(state_dir):
    with open(os.path.join(state_dir, "state.json")) as f:
        return json.load(f)


def write_inventory(state_dir, state, host="zfsvm"):
    path = os.path.join(state_dir, "inventory.yml")
    with open(path, "w") as f:
        f.write(
            "---\nall:\n  hosts:\n    %s:\n"
            "      ansible_host: 127.0.0.1\n      ansible_port: %d\n      ansible_user: root\n"
            "      ansible_ssh_private_key_file: %s\n"
            "      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
            " -o LogLevel=ERROR\n"
            "      ansible_python_interpreter: /usr/bin/python3\n" % (host, state["port"], state["key"])
        )
    return path


def start(state_dir, suite="bookworm", disks=6, disk_size="512M", memory=2048, cpus=2,
          boot_timeout=240, lifetime=None):
    """Boot the VM; return its state dict (also saved in STATE_DIR/state.json)."""
    image = image_dir(suite)
    os.makedirs(state_dir, exist_ok=True)
    accel, why = choose_accel(image)
    # The private key must be 0600 and owned by us for ssh to take it.
    key = os.path.join(state_dir, "id_ed25519")
    shutil.copyfile(os.path.join(image, "id_ed25519"), key)
    os.chmod(key, 0o600)
    serials = ["disk%d" % (i + 1) for i in range(disks)]
    lifetime = int(lifetime or os.environ.get("HOMELAB_VM_LIFETIME", "3600"))
    for attempt in range(3):
        port = free_port()
        cmd = ["timeout", "--signal=KILL", str(lifetime), qemu_binary(),
               "-name", "zfsvm", "-machine", "q35", "-accel", accel,
               "-cpu", os.environ.get("HOMELAB_VM_CPU", "qemu64"), "-m", str(memory), "-smp", str(cpus),
               "-nographic", "-nodefaults", "-no-reboot",
               "-serial", "file:" + os.path.join(state_dir, "console.log"),
               "-kernel", os.path.join(image, "vmlinuz"), "-initrd", os.path.join(image, "initrd.img"),
               "-append", "root=LABEL=root rw console=ttyS0 panic=10 systemd.show_status=0"
               # HPET reads trap into QEMU; the TSC is fine for a throwaway guest.
               + (" clocksource=tsc tsc=reliable" if accel == "tcg" else "")
               # No pool exists at boot (blank disks): skip the import units and the
               # udev settle they wait for, the slowest part of an emulated boot.
               + " systemd.mask=systemd-udev-settle.service systemd.mask=zfs-import-cache.service"
               + " systemd.mask=zfs-import-scan.service systemd.mask=e2scrub_reap.service",
               # The cached image stays pristine: the guest writes to a temporary overlay.
               "-drive", "file=%s,format=raw,if=none,id=root,snapshot=on" % os.path.join(image, "root.img"),
               "-device", "virtio-blk-pci,drive=root,serial=zfsvm-root",
               "-netdev", "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22" % port,
               "-device", "virtio-net-pci,netdev=n0"]
        for serial in serials:
            img = os.path.join(state_dir, serial + ".img")
            with open(img, "wb") as f:
                f.truncate(parse_size(disk_size))
            cmd += ["-drive", "file=%s,format=raw,if=none,id=%s,cache=unsafe" % (img, serial),
                    "-device", "virtio-blk-pci,drive=%s,serial=%s" % (serial, serial)]
        began = time.time()
        with open(os.path.join(state_dir, "qemu.log"), "w") as qlog:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        state = {"pid": proc.pid, "port": port, "key": key, "accel": accel, "suite": suite_name(suite),
                 "disks": serials, "image": image, "state_dir": state_dir}
        with open(os.path.join(state_dir, "state.json"), "w") as f:
            json.dump(state, f)
        time.sleep(1)
        if proc.poll() is not None:
            with open(os.path.join(state_dir, "qemu.log")) as f:
                err = f.read()
            if "hostfwd" in err and attempt < 2:
                continue  # the port was taken between our probe and QEMU's bind
            raise RuntimeError("QEMU exited at once: %s" % err.strip())
        break
    log("booting Debian %s (%s) with %s acceleration [%s], ssh on 127.0.0.1:%d"
        % (SUITES[suite_name(suite)], suite_name(suite), accel.upper(), why, port))
    deadline = began + boot_timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError("QEMU exited during boot; see %s/console.log" % state_dir)
        try:
            r = ssh(state, "true", check=False, timeout=15)
            if r.returncode == 0:
                break
        except subprocess.TimeoutExpired:
            pass
        if time.time() > deadline:
            stop(state_dir)
            raise RuntimeError("guest did not answer SSH within %ds (%s); see %s/console.log"
                               % (boot_timeout, accel, state_dir))
        time.sleep(2)
    # ZFS is loaded at boot (modules-load.d); wait until its device node exists.
    ssh(state, "for i in $(seq 60); do [ -e /dev/zfs ] && exit 0; sleep 1; done; exit 1", timeout=90)
    # The guest is offline (tests reach nothing outside): its package lists, baked into the image when it
    # was built, are the only ones it can have. Mark them current, or an apt task with cache_valid_time
    # tries to update them once the image is a day old, and fails.
    ssh(state, "mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/update-success-stamp", timeout=60)
    info = ssh(state, "uname -r; zfs version 2>/dev/null | head -1").stdout.split()
    state["kernel"] = info[0] if info else ""
    state["zfs_version"] = info[1] if len(info) > 1 else ""
    state["boot_seconds"] = round(time.time() - began, 1)
    with open(os.path.join(state_dir, "state.json"), "w") as f:
        json.dump(state, f)
    write_inventory(state_dir, state)
    log("ready after %.0fs with %s: kernel %s, %s, disks %s"
        % (state["boot_seconds"], accel.upper(), state["kernel"], state["zfs_version"], " ".join(serials)))
    return state


def stop(state_dir):
    """Stop the QEMU this state dir started (by its recorded pid only)."""
    try:
        state = load_state(state_dir)
    except OSError:
        return
    pid = state.get("pid")
    if not pid:
        return
    try:
        os.killpg(pid, signal.SIGTERM)  # timeout(1) and its qemu child: our own session
    except ProcessLookupError:
        return
    for _tick in range(50):
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    for serial in state.get("disks", []):
        try:
            os.unlink(os.path.join(state_dir, serial + ".img"))
        except OSError:
            pass
    log("stopped (pid %d)" % pid)


def parse_size(text):
    text = str(text).strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if text and text[-1] in mult:
        return int(float(text[:-1]) * mult[text[-1]])
    return int(text)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("recipe-hash")
    ps = sub.add_parser("start")
    ps.add_argument("state_dir")
    ps.add_argument("--suite", default=os.environ.get("HOMELAB_ZFS_VM_SUITE", "bookworm"))
    ps.add_argument("--disks", type=int, default=6)
    ps.add_argument("--disk-size", default="512M")
    ps.add_argument("--memory", type=int, default=2048)
    ps.add_argument("--cpus", type=int, default=2)
    ps.add_argument("--host", default="zfsvm", help="inventory host name")
    pt = sub.add_parser("stop")
    pt.add_argument("state_dir")
    pe = sub.add_parser("ssh")
    pe.add_argument("state_dir")
    pe.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.cmd == "recipe-hash":
        print(recipe_hash())
    elif args.cmd == "start":
        state = start(args.state_dir, args.suite, args.disks, args.disk_size, args.memory, args.cpus)
        write_inventory(args.state_dir, state, args.host)
        print(json.dumps(state))
    elif args.cmd == "stop":
        stop(args.state_dir)
    elif args.cmd == "ssh":
        cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
        r = ssh(load_state(args.state_dir), " ".join(shlex.quote(c) for c in cmd), check=False)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        return r.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
