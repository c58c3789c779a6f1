"""Fixtures for the agent tests: the release mirror, the unpacked executables, and
processes started on free loopback ports, each bounded in time and stopped by the test."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("HOMELAB_CACHE") or Path.home() / ".cache" / "selfhost-homelab")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 15.0):
    """(status, parsed JSON or text) of one request; HTTP errors are answers too."""
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


class Proc:
    """A started program whose output goes to a file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv: list[str], log: Path, env: dict | None = None, cwd: str | None = None):
        self.log = log
        self._fh = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(argv, stdout=self._fh, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                      start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_http(self, url: str, timeout: float = 20.0, ok=(200,)) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError("%s exited with %s:\n%s" % (self.popen.args, self.popen.returncode, self.output()))
            try:
                status = http("GET", url, timeout=1.0)[0]
                if status in ok:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("%s did not answer at %s within %ss:\n%s" % (self.popen.args, url, timeout, self.output()))

    def stop(self) -> int:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._fh.close()
        return self.popen.returncode


@pytest.fixture
def procs():
    """Start programs with ``procs(argv, name)``; every one is stopped when the test ends."""
    started: list[Proc] = []

    def start(argv, log: Path, **kwargs) -> Proc:
        proc = Proc([str(a) for a in argv], log, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        proc.stop()


@pytest.fixture(scope="session")
def release_mirror() -> Path:
    """The local release mirror (built by scripts/bootstrap.d/agents.sh; built here if missing)."""
    out = subprocess.run([str(REPO / "scripts" / "release-mirror" / "build.sh")], check=True,
                         capture_output=True, text=True, timeout=300)
    return Path(out.stdout.strip().splitlines()[-1])


def _install(mirror: Path, product: str, dest: Path) -> Path:
    index = json.loads((mirror / product / "index.json").read_text())
    (version, release), = index["versions"].items()
    build = release["builds"][0]
    with zipfile.ZipFile(mirror / product / build["url"]) as zf:
        zf.extract(product, dest)
    exe = dest / product
    exe.chmod(0o755)
    return exe


@pytest.fixture(scope="session")
def agent_bin(release_mirror, tmp_path_factory) -> Path:
    """A bin directory holding `nomad` and `vault` unpacked from the mirror's release zips."""
    dest = tmp_path_factory.mktemp("bin")
    for product in ("nomad", "vault"):
        _install(release_mirror, product, dest)
    return dest


@pytest.fixture(scope="session")
def consul_bin() -> Path:
    """The real Consul (Debian bullseye's 1.8.7), fetched by scripts/bootstrap.d/agents.sh."""
    path = CACHE / "debs" / "bullseye" / "consul" / "usr" / "bin" / "consul"
    if not path.exists():
        subprocess.run(["bash", str(REPO / "scripts" / "bootstrap.d" / "agents.sh")], check=True, timeout=600)
    assert path.exists(), "consul was not fetched by scripts/bootstrap.d/agents.sh"
    return path
