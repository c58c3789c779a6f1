"""docs/apps.md's claim: adding an app is a role of defaults only. The role is taken from the page and deployed."""

from __future__ import annotations

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from apps_it import REPO, failures, run_play, stats, submitted_jobs  # noqa: E402

from tests.nomad_jobschema import assert_valid_job  # noqa: E402

BLOCK = re.compile(r"<!-- file: (?P<path>[^ ]+) -->\n```yaml\n(?P<body>.*?)```", re.S)


def test_whoami_role_from_the_docs(tmp_path, nomad):
    with open(os.path.join(REPO, "docs", "apps.md"), encoding="utf-8") as fh:
        files = {m["path"]: m["body"] for m in BLOCK.finditer(fh.read())}
    assert set(files) == {"roles/whoami/defaults/main.yml", "roles/whoami/meta/main.yml"}
    for path, body in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    assert sorted(os.listdir(tmp_path / "roles" / "whoami")) == ["defaults", "meta"], "no tasks, no vars"
    os.environ["ANSIBLE_ROLES_PATH"] = str(tmp_path / "roles")
    try:
        rc, out, err = run_play(tmp_path, nomad, [{"role": "whoami"}])
        assert rc == 0, failures(out) or err
        job = submitted_jobs(out)["whoami"]
        assert_valid_job(job)
        assert nomad.job("whoami")["Status"] == "running"
        svc = job["TaskGroups"][0]["Services"][0]
        assert svc["Name"] == "whoami" and svc["Checks"][0]["Path"] == "/health"
        rc, out, err = run_play(tmp_path, nomad, [{"role": "whoami"}])
        assert rc == 0 and stats(out)["changed"] == 0
        disabled = {"whoami_enabled": False, "whoami_app": {"name": "x"}}
        rc, out, err = run_play(tmp_path, nomad, [{"role": "whoami"}], disabled)
        assert rc == 0 and stats(out)["changed"] == 0, "disabled: nothing runs, not even the checks"
    finally:
        del os.environ["ANSIBLE_ROLES_PATH"]
