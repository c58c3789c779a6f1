"""The backup role's preflight on localhost (only its preflight tasks run: --tags backup_preflight):
bad input fails with a clear message naming the field before any task that changes something."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def run_role(tmp_path, variables):
    play = [{"name": "Backup preflight", "hosts": "localhost", "gather_facts": False,
             "roles": [{"role": "selfhost.homelab.backup"}]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    (tmp_path / "vars.json").write_text(json.dumps(dict(variables, ansible_python_interpreter=sys.executable)))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default",
               ANSIBLE_ROLES_PATH=os.path.join(REPO_ROOT, "roles"))
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "--tags", "backup_preflight", "-e", "@" + str(tmp_path / "vars.json"), str(tmp_path / "play.yml")],
        capture_output=True, text=True, timeout=180, env=env, cwd=REPO_ROOT, check=False)


@pytest.fixture
def good(tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    return {
        "backup_repositories": [{"name": "usb", "url": str(tmp_path / "repo")},
                                {"name": "b2", "url": "b2:bucket:box", "options": {"b2.connections": 20}}],
        "backup_sets": [{"name": "apps", "paths": [str(src)]}],
        "backup_secrets": {"backup-apps": {"restic_password": "pw", "b2_b2_account_id": "id",
                                           "b2_b2_account_key": "key"}},
        "backup_config_dir": str(tmp_path / "etc"),
    }


def test_good_input_passes_and_changes_nothing(tmp_path, good):
    result = run_role(tmp_path, good)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "changed=0" in result.stdout and "failed=0" in result.stdout
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("change, message", [
    (lambda v, t: v["backup_sets"][0]["paths"].append(str(t / "missing")),
     "the backup path {tmp}/missing does not exist"),
    (lambda v, t: v["backup_repositories"].append({"name": "nas", "url": "smb://nas/backup"}),
     "backup_repositories[2].url 'smb://nas/backup' has an unknown scheme"),
    (lambda v, t: v.update(backup_retention={}),
     "backup_sets[0].retention: the policy keeps nothing"),
    (lambda v, t: v["backup_secrets"]["backup-apps"].pop("b2_b2_account_key"),
     "must hold ['restic_password', 'b2_b2_account_id', 'b2_b2_account_key'] to initialise repository b2"),
])
def test_bad_input_fails_before_any_change(tmp_path, good, change, message):
    change(good, tmp_path)
    result = run_role(tmp_path, good)
    assert result.returncode != 0
    assert message.format(tmp=tmp_path) in result.stdout, result.stdout
    assert not (tmp_path / "etc").exists()
