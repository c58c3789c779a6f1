"""The backup role's default set (no backup_sets given): which app data it backs up, with and
without a ZFS pool, rendered by Ansible from the role's own defaults and vars."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(REPO_ROOT, "roles", "backup")


def default_paths(tmp_path, variables):
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars_files": [os.path.join(ROLE, "defaults", "main.yml"), os.path.join(ROLE, "vars", "main.yml")],
             "tasks": [{"ansible.builtin.debug": {"var": "_backup_default_paths"}}]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="json")
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", "@" + str(tmp_path / "vars.json"), str(tmp_path / "play.yml")],
        capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["_backup_default_paths"]


def test_with_a_pool_every_dataset_with_user_data_is_its_own_snapshot(tmp_path):
    paths = default_paths(tmp_path, {"homelab_data_root": "/srv/homelab", "homelab_zfs_pool": "tank"})
    assert paths == [
        {"path": "/srv/homelab/nextcloud", "dataset": "tank/apps/nextcloud"},
        # a child dataset: the parent's snapshot shows it empty, so it is an entry of its own
        {"path": "/srv/homelab/nextcloud/html", "dataset": "tank/apps/nextcloud/html"},
        {"path": "/srv/homelab/nextcloud-db", "dataset": "tank/apps/nextcloud-db"},
        {"path": "/srv/homelab/photoprism", "dataset": "tank/apps/photoprism"},
        {"path": "/srv/homelab/photoprism-db", "dataset": "tank/apps/photoprism-db"},
    ]


def test_without_a_pool_directories_and_no_child_twice(tmp_path):
    paths = default_paths(tmp_path, {"homelab_data_root": "/srv/apps"})
    assert paths == [{"path": "/srv/apps/%s" % name} for name in
                     ("nextcloud", "nextcloud-db", "photoprism", "photoprism-db")]


@pytest.mark.parametrize("enabled", [False, "false"])
def test_a_disabled_app_and_its_database_are_left_out(tmp_path, enabled):
    paths = default_paths(tmp_path, {"homelab_data_root": "/srv/apps", "photoprism_enabled": enabled})
    assert [p["path"] for p in paths] == ["/srv/apps/nextcloud", "/srv/apps/nextcloud-db"]
