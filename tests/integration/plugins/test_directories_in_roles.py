"""The roles' directories tasks that build their list with Jinja give the module a list (not a string).

The app role's volumes are covered by tests/integration/apps; this runs the monitoring role's storage
tasks (no pool) on localhost against the test's tmp dir, twice.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: The monitoring role's storage tasks
      ansible.builtin.include_role:
        name: selfhost.homelab.monitoring
        tasks_from: storage.yml
"""


def _run(tmp_path):
    book = tmp_path / "play.yml"
    book.write_text(PLAY)
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_CONNECTION="local",
               ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"))
    extra = {"monitoring_zfs_pool": "", "monitoring_data_root": str(tmp_path / "data")}
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(book),
                           "-e", json.dumps(extra)], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    return json.loads(proc.stdout)["stats"]["localhost"]


def test_monitoring_storage_directories(tmp_path):
    first = _run(tmp_path)
    assert first["changed"] == 1
    found = {}
    for name in sorted(os.listdir(tmp_path / "data")):
        st = os.stat(tmp_path / "data" / name)
        found[name] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    assert found == {"alertmanager": (0o750, 65534, 65534), "grafana": (0o750, 472, 472),
                     "prometheus": (0o750, 65534, 65534)}
    assert _run(tmp_path)["changed"] == 0
