"""backup_plan: inventory -> program configs, Nomad jobs (accepted by the Nomad simulator), Vault roles."""

from __future__ import annotations

import copy
import os
import sys

import pytest
import requests
from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.homelab.plugins.filter.backup_plan import backup_plan

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.simulators.base import SimServer  # noqa: E402
from tests.simulators.nomad import NomadSim  # noqa: E402

SETTINGS = {
    "repositories": [
        {"name": "b2", "url": "b2:homelab-bucket:box", "options": {"b2.connections": 20}},
        {"name": "usb", "url": "/mnt/usb/restic"},
        {"name": "minio", "url": "s3:https://minio.lan/restic", "region": "eu-1"},
    ],
    "sets": [
        {"name": "apps", "paths": [{"path": "/srv/apps/nextcloud", "dataset": "tank/apps/nextcloud"},
                                   "/srv/apps/photoprism/"],
         "excludes": ["*.tmp"]},
        {"name": "etc", "paths": ["/etc"], "repositories": ["usb"], "cron": "30 2 * * *",
         "retention": {"keep_last": 3}},
    ],
    "retention": {"keep_daily": 7, "keep_weekly": 5},
    "mount": "kv",
    "host": "box",
    "program": "/usr/local/lib/homelab-backup/homelab_backup.py",
    "config_dir": "/etc/homelab/backup",
    "textfile_dir": "/var/lib/prometheus/node-exporter",
    "lock_wait": 600,
}


def plan(**changes):
    settings = copy.deepcopy(SETTINGS)
    settings.update(changes)
    return backup_plan(settings)


def jobs_by_id(result):
    return {j["ID"]: j for j in result["jobs"]}


def test_jobs_names_schedules_and_tasks():
    result = plan()
    jobs = jobs_by_id(result)
    assert sorted(jobs) == ["backup-apps", "backup-apps-retention", "backup-etc", "backup-etc-retention",
                            "restore-drill"]
    backup = jobs["backup-apps"]
    assert backup["Type"] == "batch"
    assert backup["Periodic"] == {"Enabled": True, "SpecType": "cron", "Spec": "0 21 * * *", "ProhibitOverlap": True}
    assert jobs["backup-etc"]["Periodic"]["Spec"] == "30 2 * * *"
    assert jobs["backup-apps-retention"]["Periodic"]["Spec"] == "0 23 * * *"
    assert jobs["restore-drill"]["Periodic"]["Spec"] == "0 4 * * 0"
    assert all(j["Periodic"]["ProhibitOverlap"] for j in result["jobs"])
    task = backup["TaskGroups"][0]["Tasks"][0]
    assert task["Driver"] == "raw_exec"
    assert task["Config"] == {"command": "/usr/bin/python3", "args": [
        "/usr/local/lib/homelab-backup/homelab_backup.py", "backup", "--config", "/etc/homelab/backup/apps.json"]}
    assert jobs["backup-apps-retention"]["TaskGroups"][0]["Tasks"][0]["Config"]["args"][1:] == [
        "forget", "--config", "/etc/homelab/backup/apps.json", "--lock-wait", "600"]
    assert [g["Name"] for g in jobs["restore-drill"]["TaskGroups"]] == ["drill-apps", "drill-etc"]
    assert all(g["RestartPolicy"]["Attempts"] == 0 for j in result["jobs"] for g in j["TaskGroups"])


def test_secrets_come_from_vault_through_the_template_into_the_secrets_dir():
    result = plan()
    jobs = jobs_by_id(result)
    task = jobs["backup-apps"]["TaskGroups"][0]["Tasks"][0]
    assert task["Vault"] == {"Role": "backup-apps", "ChangeMode": "noop"}
    (tmpl,) = task["Templates"]
    assert tmpl["DestPath"].startswith("secrets/") and tmpl["Envvars"] is True
    assert tmpl["EmbeddedTmpl"].startswith('{{ with secret "kv/data/backup-apps" }}')
    for line in ('RESTIC_PASSWORD={{ index .Data.data "restic_password" | toJSON }}',
                 'B2_B2_ACCOUNT_ID={{ index .Data.data "b2_b2_account_id" | toJSON }}',
                 'MINIO_AWS_SECRET_ACCESS_KEY={{ index .Data.data "minio_aws_secret_access_key" | toJSON }}'):
        assert line in tmpl["EmbeddedTmpl"]
    # the retention and drill jobs read the same secret under their own Vault roles
    ret = jobs["backup-apps-retention"]["TaskGroups"][0]["Tasks"][0]
    assert ret["Vault"]["Role"] == "backup-apps-retention" and ret["Templates"][0]["EmbeddedTmpl"] == \
        tmpl["EmbeddedTmpl"]
    drill = jobs["restore-drill"]["TaskGroups"][1]["Tasks"][0]
    assert drill["Vault"]["Role"] == "restore-drill"
    assert drill["Templates"][0]["EmbeddedTmpl"].startswith('{{ with secret "kv/data/backup-etc" }}')
    vault = {v["name"]: v for v in result["vault"]}
    assert vault["backup-apps"]["jwt_role"]["bound_claims"] == {"nomad_job_id": "backup-apps"}
    assert 'path "kv/data/backup-apps"' in vault["backup-apps-retention"]["policy"]
    assert 'path "kv/data/backup-apps"' in vault["restore-drill"]["policy"]
    assert 'path "kv/data/backup-etc"' in vault["restore-drill"]["policy"]


def test_configs_and_fields():
    result = plan()
    sets = {s["name"]: s for s in result["sets"]}
    apps = sets["apps"]
    assert apps["fields"] == ["b2_b2_account_id", "b2_b2_account_key", "minio_aws_access_key_id",
                              "minio_aws_secret_access_key", "restic_password"]
    cfg = apps["config"]
    assert cfg["sources"] == [{"path": "/srv/apps/nextcloud", "dataset": "tank/apps/nextcloud"},
                              {"path": "/srv/apps/photoprism", "dataset": None}]
    assert cfg["forget_args"] == ["--keep-daily", "7", "--keep-weekly", "5"]
    assert cfg["host"] == "box"
    b2 = next(r for r in cfg["repositories"] if r["name"] == "b2")
    assert b2["options"] == {"b2.connections": "20"}
    assert b2["env"] == {"B2_ACCOUNT_ID": "B2_B2_ACCOUNT_ID", "B2_ACCOUNT_KEY": "B2_B2_ACCOUNT_KEY"}
    minio = next(r for r in cfg["repositories"] if r["name"] == "minio")
    assert minio["plain_env"] == {"AWS_DEFAULT_REGION": "eu-1"}
    assert sets["etc"]["config"]["forget_args"] == ["--keep-last", "3"]
    assert [r["name"] for r in sets["etc"]["config"]["repositories"]] == ["usb"]
    assert [(i["repository"], i["set"]) for i in result["init"]] == [("b2", "apps"), ("minio", "apps"),
                                                                     ("usb", "apps")]


def test_the_program_accepts_every_config(tmp_path):
    """The config the filter writes is the one the program validates (no drift between the two)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "homelab_backup", os.path.join(REPO, "roles", "backup", "files", "homelab_backup.py"))
    prog = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prog)
    for s in plan()["sets"]:
        prog.validate(copy.deepcopy(s["config"]))


@pytest.mark.parametrize("changes, message", [
    ({"repositories": [{"name": "x", "url": "ftp://nas/backup"}]},
     "backup_repositories[0].url 'ftp://nas/backup' has an unknown scheme"),
    ({"repositories": [{"name": "x", "url": "rest:https://u:hunter2@nas/r"}, {"name": "y", "url": "minio:b"}]},
     "backup_repositories[1].url 'minio:b' has an unknown scheme"),
    ({"retention": {}}, "backup_sets[0].retention: the policy keeps nothing"),
    ({"retention": {"keep_daily": 0}}, "backup_sets[0].retention.keep_daily must be at least 1"),
    ({"sets": [{"name": "a", "paths": []}]}, "backup_sets[0].paths: at least one path is required"),
    ({"sets": [{"name": "a", "paths": ["relative/path"]}]}, "backup_sets[0].paths[0] must be an absolute path"),
    ({"sets": [{"name": "a", "paths": ["/x"], "repositories": ["nas"]}]},
     "backup_sets[0].repositories: 'nas' is not in backup_repositories"),
    ({"sets": [{"name": "a", "paths": ["/x"], "cron": "every night"}]}, "backup_sets[0].cron 'every night'"),
    ({"sets": [{"name": "Apps", "paths": ["/x"]}]}, "backup_sets[0].name 'Apps'"),
    ({"sets": [{"name": "a", "paths": ["/x"]}, {"name": "a", "paths": ["/y"]}]}, "backup_sets[1].name 'a' is used"),
    ({"sets": [{"name": "a", "paths": ["/x"], "exclude": ["*.tmp"]}]}, "backup_sets[0]: unknown key(s) exclude"),
])
def test_bad_input_names_the_field(changes, message):
    with pytest.raises(AnsibleFilterError) as exc:
        plan(**changes)
    assert message in str(exc.value)
    assert "hunter2" not in str(exc.value)


@pytest.fixture(scope="module")
def nomad():
    sim = NomadSim(acl_enabled=False, settle_seconds=0.1)
    with SimServer(sim) as server:
        yield server.address


def test_the_nomad_simulator_accepts_every_job(nomad):
    """Plan then register each rendered job; read it back: periodic with its cron and prohibit_overlap."""
    for job in plan()["jobs"]:
        res = requests.post("%s/v1/job/%s/plan" % (nomad, job["ID"]), json={"Job": job, "Diff": True}, timeout=10)
        assert res.status_code == 200, res.text
        assert res.json()["Diff"]["Type"] == "Added"
        res = requests.put(nomad + "/v1/jobs", json={"Job": job}, timeout=10)
        assert res.status_code == 200, res.text
        got = requests.get("%s/v1/job/%s" % (nomad, job["ID"]), timeout=10).json()
        assert got["Periodic"]["Spec"] == job["Periodic"]["Spec"]
        assert got["Periodic"]["ProhibitOverlap"] is True
        assert got["TaskGroups"][0]["Tasks"][0]["Templates"][0]["DestPath"] == "secrets/vault.env"
        again = requests.post("%s/v1/job/%s/plan" % (nomad, job["ID"]), json={"Job": job, "Diff": True}, timeout=10)
        assert again.json()["Diff"]["Type"] == "None", "the rendered job is not stable (plan shows a diff)"
