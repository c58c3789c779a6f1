"""The app role registers an app's host volumes in ONE nomad_host_volume task per state (issue 14), not a loop."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from apps_it import failures, stats  # noqa: E402

APP = {"name": "hvlist", "subdomain": "hvlist", "image": "traefik/whoami:v1.10.4", "port": 80,
       "resources": {"cpu": 50, "memory": 32}, "check": {"type": "http", "path": "/health"},
       "volumes": [{"name": "data", "destination": "/data"},
                   {"name": "cache", "kind": "scratch", "destination": "/cache"},
                   {"name": "spool", "kind": "scratch", "destination": "/spool"}]}
NAMES = ["hvlist-data", "hvlist-cache", "hvlist-spool"]


def _task(out, name):
    found = [t["hosts"]["localhost"] for p in out["plays"] for t in p["tasks"] if t["task"]["name"].endswith(name)]
    assert len(found) == 1, [t["task"]["name"] for p in out["plays"] for t in p["tasks"]]
    return found[0]


def _ours(nomad):
    return sorted(v["Name"] for v in nomad.get("/v1/volumes", type="host") if v["Name"].startswith("hvlist-"))


def test_one_task_registers_and_removes_all_volumes_of_an_app(play, nomad):
    roles = [{"role": "selfhost.homelab.app", "vars": {"app_definition": APP}}]
    rc, out, err = play(roles)
    assert rc == 0, failures(out) or err
    reg = _task(out, "Register the host volumes of hvlist")
    assert "results" not in reg, "one module run, not a loop"
    assert [v["name"] for v in reg["volumes"]] == NAMES and reg["changed"] is True
    assert _ours(nomad) == sorted(NAMES)

    rc, out, err = play(roles)
    assert rc == 0 and stats(out)["changed"] == 0, failures(out) or err
    reg = _task(out, "Register the host volumes of hvlist")
    assert reg["changed"] is False and [v["changed"] for v in reg["volumes"]] == [False] * 3

    rc, out, err = play([{"role": "selfhost.homelab.app", "vars": {"app_definition": APP, "app_state": "absent"}}])
    assert rc == 0, failures(out) or err
    gone = _task(out, "Remove the host volume registrations, the data stays - hvlist")
    assert "results" not in gone and [v["changes"] for v in gone["volumes"]] == [["deleted"]] * 3
    assert _ours(nomad) == []
