"""The consul_acl tests' Consul: one real dev agent per pytest worker, ACLs on (default deny).

The agent is Debian bullseye's Consul 1.8.7 (tests/support/consul.py; scripts/bootstrap.d/agents.sh
fetches it) on free loopback ports, stopped at the end of the session. Playbooks run on localhost
with ``module_defaults`` for ``group/selfhost.homelab.consul`` pointing at it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.consul import Consul

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def consul(tmp_path_factory):
    agent = Consul(tmp_path_factory.mktemp("consul-acl"), master=str(uuid.uuid4()))
    try:
        yield agent
    finally:
        agent.stop()


@dataclass
class PlayResult:
    rc: int
    stdout: str
    stderr: str
    tasks: dict  # task name -> the json callback's result for localhost

    def __getitem__(self, name: str) -> dict:
        return self.tasks[name]


@pytest.fixture
def play(tmp_path, consul):
    """Run a list of tasks in one play against ``consul``; ``diff``/``check`` as ansible-playbook flags."""

    def _run(tasks, *, diff: bool = False, check: bool = False, defaults: dict | None = None) -> PlayResult:
        group = {"url": consul.address, "token": consul.master} if defaults is None else defaults
        book = tmp_path / ("play-%s.yml" % uuid.uuid4().hex[:6])
        book.write_text(yaml.safe_dump([{"name": "consul_acl integration", "hosts": "localhost",
                                         "gather_facts": False,
                                         "module_defaults": {"group/selfhost.homelab.consul": group},
                                         "tasks": tasks}], sort_keys=False))
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                   ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
        for key in ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_CACERT"):
            env.pop(key, None)
        cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local", str(book)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=str(REPO), env=env, check=False)
        try:
            doc = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            raise AssertionError("ansible-playbook output is not JSON:\n%s\n%s" % (proc.stdout, proc.stderr))
        results = {}
        for play_doc in doc.get("plays", []):
            for task in play_doc.get("tasks", []):
                results[task["task"]["name"]] = task["hosts"].get("localhost", {})
        return PlayResult(proc.returncode, proc.stdout, proc.stderr, results)

    return _run
