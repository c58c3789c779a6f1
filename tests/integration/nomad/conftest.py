"""Fixtures: a Nomad to talk to (the simulator on loopback, or a real one from NOMAD_ADDR) and a module runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.simulators.base import SimServer  # noqa: E402
from tests.simulators.nomad import NomadSim  # noqa: E402

REAL = bool(os.environ.get("NOMAD_ADDR"))


class Nomad:
    def __init__(self, address: str, token: str | None, sim: NomadSim | None, server: SimServer | None):
        self.address, self.token, self.sim, self.server = address, token, sim, server

    def conn(self) -> dict:
        out = {"address": self.address}
        if self.token:
            out["token"] = self.token
        return out

    def set_outcome(self, outcome: str, job_id: str | None = None) -> None:
        assert self.sim is not None, "fault knobs exist only in the simulator"
        self.sim.set_outcome(outcome, job_id)


@pytest.fixture(scope="session")
def nomad():
    if REAL:
        yield Nomad(os.environ["NOMAD_ADDR"], os.environ.get("NOMAD_TOKEN"), None, None)
        return
    sim = NomadSim(acl_enabled=True, settle_seconds=0.3)
    server = SimServer(sim).start()
    import requests

    token = requests.post(server.address + "/v1/acl/bootstrap", timeout=5).json()["SecretID"]
    try:
        yield Nomad(server.address, token, sim, server)
    finally:
        server.stop()


@pytest.fixture
def job_id():
    """A job ID unique per test (tests run in parallel and may share a real Nomad)."""
    return "itest-" + uuid.uuid4().hex[:8]


def _run(module: str, args: dict, check: bool = False, diff: bool = False) -> dict:
    payload = dict(args)
    payload["_ansible_check_mode"] = check
    payload["_ansible_diff"] = diff
    payload.setdefault("_ansible_tmpdir", tempfile.gettempdir())
    payload.setdefault("_ansible_remote_tmp", tempfile.gettempdir())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, fh)
        path = fh.name
    try:
        env = dict(os.environ)
        env.pop("NOMAD_ADDR", None) if not REAL else None
        proc = subprocess.run([sys.executable, "-m", "ansible_collections.selfhost.homelab.plugins.modules." + module,
                               path], capture_output=True, text=True, timeout=120, env=env, cwd=REPO, check=False)
    finally:
        os.unlink(path)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module printed no JSON: rc=%s stdout=%s stderr=%s"
                             % (proc.returncode, proc.stdout, proc.stderr))
    result["_rc"] = proc.returncode
    return result


@pytest.fixture
def run_module():
    return _run


@pytest.fixture
def run_job(nomad):
    def run(check: bool = False, diff: bool = False, **args):
        return _run("nomad_job", {**nomad.conn(), **args}, check, diff)

    return run


@pytest.fixture
def job_info(nomad):
    def run(**args):
        return _run("nomad_job_info", {**nomad.conn(), **args})

    return run


def pytest_collection_modifyitems(config, items):
    if not REAL:
        return
    skip = pytest.mark.skip(reason="needs the simulator's fault knobs; NOMAD_ADDR points at a real Nomad")
    for item in items:
        if "simulator_only" in item.keywords:
            item.add_marker(skip)
