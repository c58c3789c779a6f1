"""backup_vault: the backup jobs the vault role writes policies and JWT roles for, from the same inventory.

The vault role runs before the backup role, so both compute the backup jobs from inventory; these tests
hold the two views equal: backup_vault's jobs and extra paths, through vault_job (what the vault role
does), give exactly the policies and JWT roles of backup_plan's ``vault`` answer (what the jobs use).
"""

from __future__ import annotations

import copy

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.homelab.plugins.filter.backup_plan import backup_plan
from ansible_collections.selfhost.homelab.plugins.filter.backup_vault import backup_vault
from ansible_collections.selfhost.homelab.plugins.filter.vault_job import vault_job

BASE = {
    "repositories": [{"name": "usb", "url": "/mnt/usb/restic"},
                     {"name": "b2", "url": "b2:bucket:box"}],
    "sets": [{"name": "apps", "paths": ["/srv/apps/nextcloud"]},
             {"name": "etc", "paths": ["/etc"], "repositories": ["usb"], "drill": False},
             {"name": "photos", "paths": [{"path": "/srv/apps/photoprism", "dataset": "tank/apps/photoprism"}]}],
    "retention": {"keep_daily": 7},
    "mount": "kv",
}


def _as_vault_role(sets, mount, drill_enabled=True):
    """What the vault role writes: vault_job of each job with its extra paths."""
    answer = backup_vault(sets, mount, drill_enabled=drill_enabled)
    return [{"name": j, "policy": s["policy"], "jwt_role": s["jwt_role"]}
            for j in answer["jobs"]
            for s in [vault_job(j, mount, extra_paths=answer["extra_paths"].get(j))]]


@pytest.mark.parametrize("change", [
    lambda s: None,
    lambda s: s.update(drill_enabled=False),
    lambda s: s.update(mount="secrets/homelab"),
    lambda s: s["sets"][0].update(drill=False),
    lambda s: s.update(sets=s["sets"][:1]),
])
def test_the_vault_role_writes_what_the_jobs_use(change):
    settings = copy.deepcopy(BASE)
    change(settings)
    plan = backup_plan(settings)
    assert _as_vault_role(settings["sets"], settings["mount"], settings.get("drill_enabled", True)) == plan["vault"]


def test_jobs_and_extra_paths():
    assert backup_vault(BASE["sets"], "kv") == {
        "jobs": ["backup-apps", "backup-apps-retention", "backup-etc", "backup-etc-retention",
                 "backup-photos", "backup-photos-retention", "restore-drill"],
        "extra_paths": {"backup-apps-retention": ["kv/data/backup-apps"],
                        "backup-etc-retention": ["kv/data/backup-etc"],
                        "backup-photos-retention": ["kv/data/backup-photos"],
                        "restore-drill": ["kv/data/backup-apps", "kv/data/backup-photos"]},
    }


def test_no_sets_means_the_backup_roles_default_set():
    assert backup_vault([], "kv")["jobs"] == ["backup-apps", "backup-apps-retention", "restore-drill"]
    assert backup_vault(None)["extra_paths"]["restore-drill"] == ["kv/data/backup-apps"]


def test_no_drill_job_without_drills():
    assert "restore-drill" not in backup_vault(["apps"], "kv", drill_enabled=False)["jobs"]
    assert "restore-drill" not in backup_vault([{"name": "a", "drill": False}], "kv")["jobs"]


@pytest.mark.parametrize("sets, mount, message", [
    ("apps", "kv", "the input must be the list backup_sets"),
    ([{"paths": ["/etc"]}], "kv", "backup_sets[0].name is required"),
    (["apps"], "", "mount '' is not a Vault mount path"),
])
def test_bad_input(sets, mount, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        backup_vault(sets, mount)
