"""The fqdn filter as a playbook uses it: through ansible-playbook, by FQCN."""

import json
import os
import subprocess
import sys

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: "{{ sub | selfhost.homelab.fqdn(homelab_domain) }}"
"""


def _run(tmp_path, sub, domain):
    play = tmp_path / "play.yml"
    play.write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    bindir = os.path.dirname(sys.executable)
    return subprocess.run(
        [os.path.join(bindir, "ansible-playbook"), str(play), "-e", json.dumps({"sub": sub, "homelab_domain": domain})],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


def _task_result(proc):
    out = json.loads(proc.stdout)
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_playbook_gets_the_fqdn(tmp_path):
    proc = _run(tmp_path, "Photos", "home.example.test")
    assert proc.returncode == 0, proc.stderr
    assert _task_result(proc)["msg"] == "photos.home.example.test"


def test_playbook_fails_naming_the_field(tmp_path):
    proc = _run(tmp_path, "photo_prism", "home.example.test")
    assert proc.returncode != 0
    result = _task_result(proc)
    assert result["failed"] is True
    assert "fqdn: subdomain 'photo_prism' is not a valid DNS name" in result["msg"]
