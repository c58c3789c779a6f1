"""Unit tests of nomad_job's logic with recorded Nomad answers (tests/unit/fixtures/nomad/).

The fixtures were recorded from the project's Nomad simulator (tests/simulators/nomad) for the
whoami job of the integration tests; the integration tests check the same paths over HTTP.
"""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.selfhost.homelab.plugins.module_utils import _nomad
from ansible_collections.selfhost.homelab.plugins.modules import nomad_job

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "nomad")


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as fh:
        return json.load(fh)


class FakeModule:
    def __init__(self, check_mode=False, diff=False, **params):
        base = dict(name=None, content=None, content_format="auto", variables=None, state="present", purge=False,
                    wait=False, wait_timeout=300, namespace=None)
        base.update(params)
        self.params = base
        self.check_mode = check_mode
        self._diff = diff


class FakeConn:
    """Answers like NomadConnection from recorded responses and records the calls that would change Nomad."""

    namespace = "default"

    def __init__(self, plan=None, job=None, parsed=None):
        self._plan, self._job, self._parsed = plan, job, parsed
        self.calls = []

    def parse_hcl(self, hcl, variables):
        self.calls.append(("parse", variables))
        return json.loads(json.dumps(self._parsed))

    def plan(self, job):
        self.calls.append(("plan", job["ID"]))
        return self._plan

    def register(self, job):
        self.calls.append(("register", job["ID"]))
        return {"EvalID": "e1", "Warnings": ""}

    def get_job(self, job_id):
        self.calls.append(("get", job_id))
        return self._job

    def deregister(self, job_id, purge):
        self.calls.append(("deregister", job_id, purge))
        return {"EvalID": "e2"}

    def mutations(self):
        return [c for c in self.calls if c[0] in ("register", "deregister")]


JOB = {"ID": "whoami", "Type": "service", "TaskGroups": [{"Name": "web", "Tasks": [{"Name": "whoami"}]}]}


@pytest.mark.parametrize("check_mode", [False, True])
def test_unchanged_plan_registers_nothing(check_mode):
    conn = FakeConn(plan=fixture("plan_none.json"), parsed=JOB)
    res = nomad_job.present(FakeModule(check_mode=check_mode, content='job "whoami" {}'), conn)
    assert res["changed"] is False and res["diff_type"] == "None" and res["changes"] == []
    assert [c[0] for c in conn.calls] == ["parse", "plan"]


@pytest.mark.parametrize("check_mode,registered", [(True, []), (False, [("register", "whoami")])])
def test_changed_plan_registers_outside_check_mode(check_mode, registered):
    conn = FakeConn(plan=fixture("plan_edited.json"))
    res = nomad_job.present(FakeModule(check_mode=check_mode, diff=True, content=dict(JOB)), conn)
    assert res["changed"] is True and res["diff_type"] == "Edited"
    assert conn.mutations() == registered
    assert "group[web].task[whoami].Config.image: traefik/whoami:v1.10\n" in res["diff"]["before"]
    assert "group[web].task[whoami].Config.image: traefik/whoami:v1.11\n" in res["diff"]["after"]


def test_diff_redacts_secret_looking_fields():
    before, after = _nomad.flatten_diff(fixture("plan_edited.json")["Diff"])
    assert after["group[web].task[whoami].Env[API_TOKEN]"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert after["group[web].task[whoami].Env[MODE]"] == "prod"
    assert "group[web].task[whoami].Env[MODE]" not in before
    assert "s3cret" not in json.dumps([before, after])


def test_added_plan_lists_new_fields():
    before, after = _nomad.flatten_diff(fixture("plan_added.json")["Diff"])
    assert before == {}
    assert after["group[web].task[whoami].Config.image"] == "traefik/whoami:v1.10"
    assert after["group[web].Count"] == "1"
    lines = _nomad.diff_to_text(before, after).splitlines()
    assert all(line.startswith("+ ") for line in lines)


def test_name_mismatch_fails_before_plan():
    conn = FakeConn(plan=fixture("plan_added.json"), parsed=JOB)
    with pytest.raises(_nomad.NomadError, match=r"^name: 'other' differs from the job file's ID 'whoami'$"):
        nomad_job.present(FakeModule(name="other", content='job "whoami" {}'), conn)
    assert [c[0] for c in conn.calls] == ["parse"]


def test_variables_are_rendered_as_an_hcl_var_file():
    text = _nomad.render_variables({"image": "traefik:v3.7", "count": 2, "on": True, "tags": ["a", "b"]})
    assert text == 'count = 2\nimage = "traefik:v3.7"\non = true\ntags = ["a", "b"]\n'
    assert _nomad.render_variables(None) == ""


@pytest.mark.parametrize("content,fmt,expect", [
    ({"Job": JOB}, "auto", "whoami"),
    (json.dumps(JOB), "auto", "whoami"),
    (json.dumps({"Job": JOB}), "json", "whoami"),
])
def test_load_job_accepts_json_and_dicts(content, fmt, expect):
    job, dummy = _nomad.load_job(FakeConn(), content, fmt, "")
    assert job["ID"] == expect


@pytest.mark.parametrize("content,fmt,message", [
    ("{not json", "json", "content: invalid JSON"),
    ({"job": {"whoami": {}}}, "auto", "HCL-as-JSON"),
    ({"Type": "service"}, "auto", "content: the job has no ID"),
])
def test_load_job_rejects_bad_content(content, fmt, message):
    with pytest.raises(_nomad.NomadError, match=message):
        _nomad.load_job(FakeConn(), content, fmt, "")


def test_variables_only_with_hcl():
    with pytest.raises(_nomad.NomadError, match="^variables: only HCL job files take variables$"):
        _nomad.load_job(FakeConn(), json.dumps(JOB), "auto", 'image = "x"\n')


@pytest.mark.parametrize("job,check_mode,purge,expected", [
    (None, False, True, []),
    ({"ID": "whoami", "Stop": True, "Status": "dead", "Version": 1}, False, False, []),
    ({"ID": "whoami", "Stop": True, "Status": "dead", "Version": 1}, False, True, [("deregister", "whoami", True)]),
    ({"ID": "whoami", "Stop": False, "Status": "running", "Version": 1}, True, False, []),
    ({"ID": "whoami", "Stop": False, "Status": "running", "Version": 1}, False, False,
     [("deregister", "whoami", False)]),
])
def test_absent(job, check_mode, purge, expected):
    conn = FakeConn(job=job)
    res = nomad_job.absent(FakeModule(check_mode=check_mode, name="whoami", state="absent", purge=purge), conn)
    assert conn.mutations() == expected
    assert res["changed"] is (job is not None and (purge or not job["Stop"]))


def test_failed_allocations_become_one_line_each():
    lines = _nomad.failed_alloc_events(fixture("allocations_failed.json"))
    assert len(lines) == 1
    assert lines[0].startswith("alloc ") and "(whoami.web[0])" in lines[0]
    assert "task whoami: " in lines[0] and "Simulated task failure (knob)" in lines[0]
    assert "\n" not in lines[0]


def test_needs_deployment():
    assert _nomad.needs_deployment({"Type": "service"})
    assert not _nomad.needs_deployment({"Type": "batch"})
    assert not _nomad.needs_deployment({"Type": "service", "Periodic": {"Spec": "@daily"}})
    assert not _nomad.needs_deployment({"Type": "system"})
