"""The apps' extra Vault paths reach the vault role, the way playbooks/hashistack.yml wires them.

The Vault play's pre_tasks are taken from playbooks/hashistack.yml itself (not a copy): they run the enabled app
roles' vault entry points on localhost. Then the vault role's own variables (roles/vault/defaults and vars) are
evaluated with the result, and every job's policy is built as the vault role builds it (vault_job with
_vault_job_extra_paths): the databases get a policy that reads their app's secret, a disabled app contributes
nothing, and paths the inventory gives in vault_job_extra_paths are kept beside the collected ones. The backup
jobs' paths (vault_backup_jobs, from the backup inventory) are left out (`{}`) except in the test of the merge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from ansible_collections.selfhost.homelab.plugins.filter.vault_job import vault_job

REPO = Path(__file__).resolve().parents[3]


def _vault_play_pre_tasks() -> list:
    plays = yaml.safe_load((REPO / "playbooks" / "hashistack.yml").read_text())
    (play,) = [p for p in plays if p.get("hosts") == "vault_servers"]
    return play["pre_tasks"]


def _run(tmp_path: Path, variables: dict, backups: bool = False) -> dict:
    tasks = _vault_play_pre_tasks() + [
        {"name": "Load the vault role's variables", "ansible.builtin.include_vars": {"file": str(path)}}
        for path in (REPO / "roles/vault/vars/main.yml",)
    ] + [{"name": "Show", "ansible.builtin.debug": {
        "msg": "{{ {'names': _vault_job_names, 'extra': _vault_job_extra_paths, 'mount': vault_kv_mount} }}"}}]
    # The role's defaults at their precedence, under the inventory's values.
    defaults = yaml.safe_load((REPO / "roles/vault/defaults/main.yml").read_text())
    if not backups:
        defaults["vault_backup_jobs"] = {}
    play = [{"hosts": "localhost", "gather_facts": False, "vars": dict(defaults, **variables), "tasks": tasks}]
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=%s" % sys.executable, str(path)],
                          capture_output=True, text=True, env=env, cwd=str(REPO), timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    return out["plays"][0]["tasks"][-1]["hosts"]["localhost"]["msg"]


def _policies(seen: dict) -> dict:
    """What the vault role writes: vault_job(job, mount, extra_paths=_vault_job_extra_paths[job])."""
    return {job: vault_job(job, seen["mount"], extra_paths=seen["extra"].get(job) or None)["policy"]
            for job in seen["names"]}


SECRETS = {"photoprism": {"admin_password": "a", "db_password": "b", "db_root_password": "c"},
           "nextcloud": {"admin_password": "d", "db_password": "e"}}


def test_the_databases_get_a_policy_reading_their_apps_secret(tmp_path):
    seen = _run(tmp_path, {"homelab_domain": "home.example.test", "homelab_secrets": SECRETS,
                           "homelab_vault_kv_mount": "secret"})
    assert seen["extra"] == {"photoprism-db": ["secret/data/photoprism"], "nextcloud-db": ["secret/data/nextcloud"]}
    assert {"photoprism", "photoprism-db", "nextcloud", "nextcloud-db"} <= set(seen["names"])
    policies = _policies(seen)
    assert 'path "secret/data/photoprism"' in policies["photoprism-db"]
    assert 'path "secret/data/nextcloud"' in policies["nextcloud-db"]
    # The apps themselves read only their own path.
    assert 'path "secret/data/photoprism-db"' not in policies["photoprism"]
    assert 'path "secret/data/nextcloud"' not in policies["photoprism-db"]


def test_disabled_app_adds_nothing_and_inventory_paths_stay(tmp_path):
    seen = _run(tmp_path, {"homelab_domain": "home.example.test", "homelab_secrets": SECRETS,
                           "photoprism_enabled": False,
                           "vault_job_extra_paths": {"nextcloud-db": ["kv/data/shared-smtp"],
                                                     "grafana": ["kv/data/smtp"]}})
    assert seen["extra"] == {"nextcloud-db": ["kv/data/nextcloud", "kv/data/shared-smtp"],
                             "grafana": ["kv/data/smtp"]}
    assert "photoprism-db" not in seen["names"] and "grafana" in seen["names"]


def test_an_inventory_without_a_domain_deploys_no_apps_and_collects_nothing(tmp_path):
    seen = _run(tmp_path, {"homelab_secrets": {"web": {"greeting": "hi"}}})
    assert seen["extra"] == {} and seen["names"] == ["web"]


def test_backup_jobs_paths_are_merged_with_the_apps_and_the_inventorys(tmp_path):
    # The default backup set "apps" (backup_vault filter): its retention and drill jobs read the set's secret.
    seen = _run(tmp_path, {"homelab_domain": "home.example.test", "homelab_secrets": SECRETS,
                           "vault_job_extra_paths": {"restore-drill": ["kv/data/smtp"]}}, backups=True)
    assert seen["extra"]["photoprism-db"] == ["kv/data/photoprism"]
    assert seen["extra"]["backup-apps-retention"] == ["kv/data/backup-apps"]
    assert seen["extra"]["restore-drill"] == ["kv/data/backup-apps", "kv/data/smtp"]
    assert {"photoprism-db", "backup-apps", "backup-apps-retention", "restore-drill"} <= set(seen["names"])
    assert 'path "kv/data/backup-apps"' in _policies(seen)["restore-drill"]
