"""Pipelining is on wherever this project runs Ansible.

Without it every task costs several round trips to the target (make a temp
dir, put the module, chmod, run, remove); with it, one. Only the
``[connection]`` section (or ANSIBLE_PIPELINING) reaches every connection
plugin: ``[ssh_connection]`` alone leaves the docker connection, which the demo
and Molecule use, without it (ansible-config reports the default, False).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]


def _pipelining(cfg: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(cfg), ANSIBLE_HOME=str(REPO / ".cache" / "ansible-home"))
    out = subprocess.run(["ansible-config", "dump"], env=env, cwd=cfg.parent, capture_output=True, text=True,
                         check=True).stdout
    lines = [line for line in out.splitlines() if line.startswith("ANSIBLE_PIPELINING(")]
    assert len(lines) == 1, out
    return lines[0]


@pytest.mark.parametrize("cfg", ["ansible.cfg", "inventories/example-single/ansible.cfg",
                                 "inventories/example-cluster/ansible.cfg"])
def test_pipelining_is_on_for_every_connection(cfg):
    line = _pipelining(REPO / cfg)
    assert line == "ANSIBLE_PIPELINING(%s) = True" % (REPO / cfg), line


def test_pipelining_is_on_in_molecule():
    config = yaml.safe_load((REPO / ".config" / "molecule" / "config.yml").read_text())
    assert config["provisioner"]["config_options"]["connection"]["pipelining"] is True


def test_a_ssh_only_setting_would_not_reach_the_docker_connection(tmp_path):
    """The check above can fail: the old [ssh_connection]-only setting reads as the default."""
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[ssh_connection]\npipelining = true\n")
    assert _pipelining(cfg) == "ANSIBLE_PIPELINING(default) = False"
