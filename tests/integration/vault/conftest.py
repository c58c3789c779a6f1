"""Fixtures for the vault_kv integration tests: a Vault over real HTTP on loopback.

Without VAULT_ADDR, one dev-mode simulator per pytest worker (session fixture,
free port). With VAULT_ADDR (and VAULT_TOKEN, a root or equally able token),
the same tests run against that real Vault; tests marked ``simulator_only``
(they need the simulator's fault knobs or request log) are skipped there.
Every test module works in its own freshly mounted KV engines, so runs never
see each other's secrets, on the simulator or on a real server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
REAL_VAULT = bool(os.environ.get("VAULT_ADDR"))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def pytest_collection_modifyitems(config, items):
    if not REAL_VAULT:
        return
    skip = pytest.mark.skip(reason="needs the Vault simulator (VAULT_ADDR points at a real Vault)")
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(HERE) and item.get_closest_marker("simulator_only"):
            item.add_marker(skip)


@dataclass
class Vault:
    addr: str
    token: str
    sim: object | None = None  # the SimServer, when simulated
    session: requests.Session = field(default_factory=requests.Session)

    def api(self, method: str, path: str, json_body=None, token: str | None = None, **kw) -> requests.Response:
        headers = {"X-Vault-Token": token if token is not None else self.token}
        return self.session.request(method, "%s/v1/%s" % (self.addr, path.lstrip("/")), json=json_body,
                                    headers=headers, timeout=10, **kw)

    def ok(self, method: str, path: str, json_body=None, token: str | None = None) -> dict:
        resp = self.api(method, path, json_body, token)
        assert resp.status_code in (200, 204), "%s %s -> %d %s" % (method, path, resp.status_code, resp.text)
        return resp.json() if resp.status_code == 200 else {}

    def mount_kv(self, version: int) -> str:
        name = "it-kv%d-%s" % (version, uuid.uuid4().hex[:8])
        self.ok("POST", "sys/mounts/%s" % name, {"type": "kv", "options": {"version": str(version)}})
        return name

    def unmount(self, name: str) -> None:
        self.api("DELETE", "sys/mounts/%s" % name)

    def count(self, method: str | None = None, path_prefix: str = "/v1/") -> int:
        assert self.sim is not None
        return self.sim.count(method, path_prefix)


@pytest.fixture(scope="session")
def vault():
    if REAL_VAULT:
        token = os.environ.get("VAULT_TOKEN")
        if not token:
            pytest.fail("VAULT_ADDR is set: set VAULT_TOKEN to a root token of that (test) Vault too")
        yield Vault(os.environ["VAULT_ADDR"].rstrip("/"), token)
        return
    from tests.simulators.vault import start_dev

    sim = start_dev(root_token="root-" + uuid.uuid4().hex)
    try:
        yield Vault(sim.address, sim.app.dev_root_token, sim)
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def kv2(vault):
    name = vault.mount_kv(2)
    yield name
    vault.unmount(name)


@pytest.fixture(scope="module")
def kv1(vault):
    name = vault.mount_kv(1)
    yield name
    vault.unmount(name)


@dataclass
class PlayResult:
    rc: int
    stdout: str
    stderr: str
    tasks: dict[str, dict]  # task name -> result (the json callback's host result)

    def __getitem__(self, name: str) -> dict:
        return self.tasks[name]


def run_play(tmp_path: Path, tasks: list[dict], *, vault: Vault | None = None, check: bool = False,
             diff: bool = False, verbosity: int = 0, callback: str = "ansible.posix.json",
             module_defaults: dict | None = None, extra_env: dict | None = None) -> PlayResult:
    """Run ``tasks`` in one play on localhost with ansible-playbook; results by task name."""
    defaults = {}
    if vault is not None:
        defaults = {"group/selfhost.homelab.vault": {"url": vault.addr, "token": vault.token}}
    if module_defaults:
        defaults.update(module_defaults)
    play = [{"name": "vault_kv integration", "hosts": "localhost", "gather_facts": False,
             "module_defaults": defaults, "tasks": tasks}]
    book = tmp_path / ("play-%s.yml" % uuid.uuid4().hex[:6])
    book.write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": callback,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_GALAXY_SERVER_LIST": "",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    })
    for key in ("VAULT_ADDR", "VAULT_TOKEN"):
        env.pop(key, None)
    env.update(extra_env or {})
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local", str(book)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=str(REPO), env=env, check=False)
    results: dict[str, dict] = {}
    if callback == "ansible.posix.json":
        try:
            doc = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            raise AssertionError("ansible-playbook output is not JSON:\n%s\n%s" % (proc.stdout, proc.stderr))
        for play_doc in doc.get("plays", []):
            for task in play_doc.get("tasks", []):
                results[task["task"]["name"]] = task["hosts"].get("localhost", {})
    return PlayResult(proc.returncode, proc.stdout, proc.stderr, results)


@pytest.fixture
def play(tmp_path):
    def _run(tasks, **kw):
        return run_play(tmp_path, tasks, **kw)

    return _run
