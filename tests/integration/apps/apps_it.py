"""Shared by the apps integration tests: the Nomad simulator on loopback and an ansible-playbook runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.simulators.base import SimServer  # noqa: E402
from tests.simulators.nomad import NomadSim  # noqa: E402


class Nomad:
    def __init__(self, server, token):
        self.server, self.address, self.token = server, server.address, token

    def get(self, path, **params):
        resp = requests.get(self.address + path, params=params, headers={"X-Nomad-Token": self.token}, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def job(self, job_id):
        return self.get("/v1/job/" + job_id)

    def volumes(self):
        return {v["Name"]: self.get("/v1/volume/host/" + v["ID"]) for v in self.get("/v1/volumes", type="host")}


@pytest.fixture(scope="session")
def nomad():
    server = SimServer(NomadSim(acl_enabled=True, settle_seconds=0.2)).start()
    try:
        token = requests.post(server.address + "/v1/acl/bootstrap", timeout=5).json()["SecretID"]
        yield Nomad(server, token)
    finally:
        server.stop()


def run_play(tmp_path, nomad, roles, extra_vars=None, check=False, diff=False):
    """Run a play of roles against the simulator; answers (rc, parsed json callback output, stderr)."""
    data_root, scratch_root = tmp_path / "data", tmp_path / "scratch"
    variables = {"homelab_domain": "home.example.test", "homelab_data_root": str(data_root),
                 "homelab_scratch_root": str(scratch_root), "homelab_zfs_pool": "",
                 "homelab_lan_cidrs": ["192.168.1.0/24"], "ansible_python_interpreter": sys.executable,
                 "app_wait_timeout": 60}
    variables.update(extra_vars or {})
    play = [{"hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/selfhost.homelab.nomad": {"address": nomad.address, "token": nomad.token}},
             "vars": variables, "roles": roles}]
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_NOCOLOR="1", ANSIBLE_PIPELINING="true")
    env.pop("NOMAD_ADDR", None)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(path), "-c", "local",
           "-i", "localhost,"]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False, cwd=REPO)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("no JSON from ansible-playbook: rc=%s\n%s\n%s" % (proc.returncode, proc.stdout,
                                                                               proc.stderr))
    return proc.returncode, out, proc.stderr


@pytest.fixture
def play(tmp_path, nomad):
    def run(roles, extra_vars=None, check=False, diff=False):
        return run_play(tmp_path, nomad, roles, extra_vars, check, diff)

    return run


def stats(out):
    return out["stats"]["localhost"]


def failures(out):
    msgs = []
    for p in out["plays"]:
        for t in p["tasks"]:
            res = t["hosts"].get("localhost", {})
            if res.get("failed"):
                msgs.append("%s: %s" % (t["task"]["name"], res.get("msg") or res))
            for r in res.get("results") or []:
                if r.get("failed"):
                    msgs.append("%s: %s" % (t["task"]["name"], r.get("msg")))
    return msgs


def submitted_jobs(out):
    """The jobs nomad_job submitted in the play, by ID (the module returns the job it sent)."""
    jobs = {}
    for p in out["plays"]:
        for t in p["tasks"]:
            res = t["hosts"].get("localhost", {})
            if isinstance(res.get("job"), dict) and res["job"].get("ID"):
                jobs[res["job"]["ID"]] = res["job"]
    return jobs


def changed_tasks(out):
    names = []
    for p in out["plays"]:
        for t in p["tasks"]:
            res = t["hosts"].get("localhost", {})
            if res.get("changed"):
                names.append(t["task"]["name"])
    return names
