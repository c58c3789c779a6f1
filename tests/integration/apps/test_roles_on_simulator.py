"""The app roles through ansible-playbook against the Nomad simulator: directories, host volumes, jobs."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from conftest import changed_tasks, failures, stats, submitted_jobs  # noqa: E402

from tests.nomad_jobschema import assert_valid_job  # noqa: E402

UID = str(os.getuid())


def test_photoprism(play, nomad, tmp_path):
    extra = {"photoprism_originals": [{"user": "anna"}], "photoprism_nextcloud_uid": UID}
    rc, out, err = play([{"role": "selfhost.homelab.photoprism"}], extra)
    assert rc == 0, failures(out) or err
    jobs = submitted_jobs(out)
    assert set(jobs) == {"photoprism", "photoprism-db"}
    for job in jobs.values():
        assert_valid_job(job)
    assert_valid_job(nomad.job("photoprism"), strict=False)
