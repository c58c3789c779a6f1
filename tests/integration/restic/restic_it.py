"""Real restic (Debian 12's 0.14 and trixie's 0.18) on four real backends, all on loopback.

Servers are started once per xdist worker (session fixtures) on free loopback
ports and stopped at the end: a private sshd (own config, host key and
authorized key; the machine's sshd is not touched), restic's rest-server, and
moto's S3 server. scripts/bootstrap.d/restic.sh provides the binaries.

Source data lives under /var/tmp/selfhost-homelab-restic/<worker>, not under
/tmp: restic records every ancestor directory of a backed-up path in the
snapshot, and /tmp's mtime changes all the time, which would (rightly) make
every backup "changed".
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CACHE = os.environ.get("HOMELAB_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "selfhost-homelab"))
BINARIES = {
    "0.14": "/usr/bin/restic",
    "0.18": os.path.join(CACHE, "restic", "bin", "restic-trixie"),
}
REST_SERVER = os.path.join(CACHE, "restic", "bin", "rest-server")
DATA_BASE = "/var/tmp/selfhost-homelab-restic"  # source data: on disk, stable ancestors
FAST_BASE = "/dev/shm/selfhost-homelab-restic"  # repositories, caches, servers: tmpfs, no fsync cost
PASSWORD = "it-Pa55word-never-shown"
S3_KEY_ID = "AKIAIT0000EXAMPLE"
S3_SECRET = "it-S3-secret-never-shown"
BACKENDS = ["local", "sftp", "rest", "s3"]


def _need(path, what):
    if not os.access(path, os.X_OK):
        pytest.fail("%s not found at %s: run scripts/bootstrap.sh" % (what, path))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited early with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listens on 127.0.0.1:%d after %ss" % (port, timeout))


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def src_root(worker_id, testrun_uid):
    """Where each test's source data lives (see the module docstring for why not /tmp)."""
    # One directory per test run (xdist's run id: concurrent runs do not meet),
    # and in it every worker's directory, made at once by whichever worker comes
    # first, so no worker changes a shared ancestor's mtime while another backs up.
    run = os.path.join(DATA_BASE, "run-" + testrun_uid[:12])
    for name in ["master"] + ["gw%d" % i for i in range(16)]:
        os.makedirs(os.path.join(run, name), exist_ok=True)
    root = os.path.join(run, worker_id)
    yield root
    # Empty this worker's directory but keep it (and the run directory): removing
    # either would change an ancestor of another worker's data mid-test.
    # scripts/bootstrap.d/restic.sh removes run directories older than 12 hours.
    for entry in os.listdir(root):
        shutil.rmtree(os.path.join(root, entry), ignore_errors=True)


@pytest.fixture(scope="session")
def data_root(worker_id, testrun_uid):
    """Repositories, restic caches and the servers' files, on tmpfs (restic fsyncs every file it writes)."""
    # A directory of its own per fixture instance: other areas' conftests import this
    # fixture too (tests/integration/backup), and each import is its own session fixture.
    run = os.path.join(FAST_BASE, "run-" + testrun_uid[:12])
    os.makedirs(run, exist_ok=True)
    root = tempfile.mkdtemp(prefix=worker_id + "-", dir=run)
    for sub in ("args", "cache", "repos", "rest", "sftp", "sshd"):
        os.makedirs(os.path.join(root, sub))
    yield root
    shutil.rmtree(root, ignore_errors=True)
    try:
        os.rmdir(os.path.dirname(root))
    except OSError:
        pass  # another worker still uses it


@pytest.fixture(scope="session")
def rest_server(data_root):
    _need(REST_SERVER, "restic rest-server")
    port = free_port()
    proc = subprocess.Popen(
        [REST_SERVER, "--listen", "127.0.0.1:%d" % port, "--path", os.path.join(data_root, "rest"), "--no-auth"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc)
        yield {"port": port, "path": os.path.join(data_root, "rest")}
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def s3_server():
    import boto3

    port = free_port()
    moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
    proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        client = boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % port, region_name="us-east-1",
                              aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET)
        client.create_bucket(Bucket="restic")
        yield {"port": port, "client": client, "bucket": "restic"}
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def sshd(data_root):
    d = os.path.join(data_root, "sshd")
    _need("/usr/sbin/sshd", "sshd (openssh-server)")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, "client_key")], check=True)
    shutil.copy(os.path.join(d, "client_key.pub"), os.path.join(d, "authorized_keys"))
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    port = free_port()
    config = os.path.join(d, "sshd_config")
    with open(config, "w") as f:
        f.write(
            "\n".join([
                "Port %d" % port,
                "ListenAddress 127.0.0.1",
                "HostKey %s/host_key" % d,
                "PidFile none",
                "AuthorizedKeysFile %s/authorized_keys" % d,
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "Subsystem sftp internal-sftp",
                "LogLevel ERROR",
                "",
            ])
        )
    with open(os.path.join(d, "host_key.pub")) as f:
        host_pub = " ".join(f.read().split()[:2])
    with open(os.path.join(d, "known_hosts"), "w") as f:
        f.write("[127.0.0.1]:%d %s\n" % (port, host_pub))
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
        command = ("ssh -p %d -i %s/client_key -o BatchMode=yes -o StrictHostKeyChecking=yes "
                   "-o UserKnownHostsFile=%s/known_hosts %s@127.0.0.1 -s sftp" % (port, d, d, user))
        yield {"port": port, "user": user, "command": command, "path": os.path.join(data_root, "sftp")}
    finally:
        stop(proc)


class Repo:
    """One fresh repository on one backend, and the module run against it."""

    def __init__(self, version, backend, data_root, src_root, request):
        self.version = version
        self.binary = BINARIES[version]
        _need(self.binary, "restic %s" % version)
        self.backend = backend
        self.name = "%s-%s-%s" % (backend, version.replace(".", ""), uuid.uuid4().hex[:8])
        self.work = os.path.join(src_root, self.name)
        self.args_dir = os.path.join(data_root, "args")
        os.makedirs(os.path.join(self.work, "src", "data"))
        os.makedirs(os.path.join(self.work, "restore"))
        self.src = os.path.join(self.work, "src", "data")
        self.base_args = {"binary": self.binary, "password": PASSWORD,
                          "cache_dir": os.path.join(data_root, "cache")}
        if backend == "local":
            self.local_path = os.path.join(data_root, "repos", self.name)
            self.base_args["repository"] = self.local_path
        elif backend == "sftp":
            sshd = request.getfixturevalue("sshd")
            self.local_path = os.path.join(sshd["path"], self.name)
            self.base_args["repository"] = "sftp:%s@127.0.0.1:%s" % (sshd["user"], self.local_path)
            self.base_args["options"] = {"sftp.command": sshd["command"]}
        elif backend == "rest":
            rest = request.getfixturevalue("rest_server")
            self.local_path = os.path.join(rest["path"], self.name)
            self.base_args["repository"] = "rest:http://127.0.0.1:%d/%s/" % (rest["port"], self.name)
        elif backend == "s3":
            s3 = request.getfixturevalue("s3_server")
            self.s3 = s3
            self.local_path = None
            self.base_args["repository"] = "s3:http://127.0.0.1:%d/%s/%s" % (s3["port"], s3["bucket"], self.name)
            self.base_args.update(aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET,
                                  aws_default_region="us-east-1")

    def run(self, check_mode=False, diff=False, **args):
        params = dict(self.base_args, **args)
        params["_ansible_check_mode"] = check_mode
        params["_ansible_diff"] = diff
        argsfile = os.path.join(self.args_dir, self.name + ".json")
        with open(argsfile, "w") as f:
            json.dump({"ANSIBLE_MODULE_ARGS": params}, f)
        proc = subprocess.run(module_command(argsfile), capture_output=True, text=True, env=module_env(), timeout=120,
                              check=False)
        os.unlink(argsfile)
        for secret in (PASSWORD, S3_SECRET):
            assert secret not in proc.stdout and secret not in proc.stderr, "a secret reached the output"
        try:
            return json.loads(proc.stdout)
        except ValueError:
            raise AssertionError("module printed no JSON: rc=%s\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr))

    def start(self, argsfile_params):
        """Start the module without waiting (for the interrupted-backup case)."""
        params = dict(self.base_args, **argsfile_params)
        argsfile = os.path.join(self.args_dir, self.name + "-bg.json")
        with open(argsfile, "w") as f:
            json.dump({"ANSIBLE_MODULE_ARGS": params}, f)
        return subprocess.Popen(module_command(argsfile), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=module_env(), start_new_session=True)

    def fingerprint(self):
        """Every object of the repository: name -> sha256 of its bytes."""
        out = {}
        if self.local_path is None:
            client, bucket = self.s3["client"], self.s3["bucket"]
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=self.name + "/")
            for page in pages:
                for obj in page.get("Contents", []):
                    body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                    out[obj["Key"]] = hashlib.sha256(body).hexdigest()
            return out
        for dirpath, dirnames, filenames in os.walk(self.local_path):
            for name in dirnames:
                out[os.path.relpath(os.path.join(dirpath, name), self.local_path) + "/"] = "dir"
            for name in filenames:
                full = os.path.join(dirpath, name)
                with open(full, "rb") as f:
                    out[os.path.relpath(full, self.local_path)] = hashlib.sha256(f.read()).hexdigest()
        return out


def module_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(REPO_ROOT, ".cache", "collections"), env.get("PYTHONPATH", "")])
    for name in ("RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND", "RESTIC_REPOSITORY"):
        env.pop(name, None)
    return env


def module_command(argsfile):
    return [sys.executable, "-m", "ansible_collections.selfhost.homelab.plugins.modules.restic_repo", argsfile]


def write_tree(root, seed=0, big=256 * 1024):
    """A small tree: text files, a nested directory, a binary file and a symlink."""
    os.makedirs(os.path.join(root, "nested", "deeper"), exist_ok=True)
    with open(os.path.join(root, "hello.txt"), "w") as f:
        f.write("hello %d\n" % seed)
    with open(os.path.join(root, "nested", "deeper", "notes.md"), "w") as f:
        f.write("# notes %d\n" % seed)
    with open(os.path.join(root, "nested", "blob.bin"), "wb") as f:
        f.write(hashlib.sha256(str(seed).encode()).digest() * (big // 32))
    if not os.path.lexists(os.path.join(root, "link")):
        os.symlink("hello.txt", os.path.join(root, "link"))


@pytest.fixture(params=sorted(BINARIES), ids=lambda v: "restic" + v)
def version(request):
    return request.param


@pytest.fixture(params=BACKENDS)
def repo(request, version, data_root, src_root):
    return Repo(version, request.param, data_root, src_root, request)


@pytest.fixture
def local_repo(version, data_root, src_root, request):
    return Repo(version, "local", data_root, src_root, request)


@pytest.fixture
def lock_holder():
    """Start `restic backup --stdin` that holds a lock until stopped (or killed)."""
    procs = []

    def start(repo):
        env = dict(module_env(), RESTIC_PASSWORD=PASSWORD)
        cmd = [repo.binary, "-r", repo.base_args["repository"], "--cache-dir", repo.base_args["cache_dir"],
               "backup", "--stdin", "--quiet"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        procs.append(proc)
        locks = os.path.join(repo.local_path, "locks")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not os.listdir(locks):
            time.sleep(0.05)
        assert os.listdir(locks), "restic did not take a lock"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
