"""inventories/example-cluster: the preflight accepts it, and site.yml and upgrade.yml read it.

No host is touched: the addresses are the example's LAN addresses nobody
answers here, and the runs are the preflight (controller only),
--syntax-check and --list-hosts.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "inventories" / "example-cluster"
ANSIBLE_BIN = Path(sys.executable).parent
PLACEHOLDER = "CHANGE_ME"
SERVERS = ["server1", "server2", "server3"]
CLIENTS = ["client1", "client2"]


def ansible(tool, *args, json_out=False):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    if json_out:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    return subprocess.run([str(ANSIBLE_BIN / tool), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300, check=False, cwd=REPO)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example as an owner sets it up: vault.yml from the example, filled in, encrypted."""
    tmp = tmp_path_factory.mktemp("example-cluster")
    inv = tmp / "example-cluster"
    shutil.copytree(EXAMPLE, inv)
    vault_dir = inv / "group_vars" / "all"
    text = (vault_dir / "vault.yml.example").read_text()
    (vault_dir / "vault.yml").write_text(re.sub(PLACEHOLDER, lambda _m: secrets.token_urlsafe(12), text))
    password = tmp / "vault-pass"
    password.write_text("test-only-vault-password\n")
    proc = ansible("ansible-vault", "encrypt", "--vault-password-file", password, vault_dir / "vault.yml")
    assert proc.returncode == 0, proc.stderr
    return inv, password


def test_the_example_has_three_servers_and_two_clients():
    with open(EXAMPLE / "hosts.yml", encoding="utf-8") as fh:
        groups = yaml.safe_load(fh)
    for group in ("consul_servers", "vault_servers", "nomad_servers"):
        assert list(groups[group]["hosts"]) == SERVERS
    assert list(groups["nomad_clients"]["hosts"]) == CLIENTS
    assert list(groups["homelab"]["hosts"]) == SERVERS + CLIENTS
    layout = yaml.safe_load((EXAMPLE / "group_vars" / "all" / "vault.yml.example").read_text())
    values = [v for job in layout["homelab_secrets"].values() for v in job.values()]
    assert layout["homelab_bootstrap_password"] == PLACEHOLDER
    assert values and all(v == PLACEHOLDER for v in values)


def test_the_example_passes_the_preflight(example):
    inv, password = example
    proc = ansible("ansible-playbook", REPO / "playbooks" / "preflight.yml", "-i", inv / "hosts.yml",
                   "--vault-password-file", password, json_out=True)
    out = json.loads(proc.stdout)
    result = next(iter(out["plays"][0]["tasks"][0]["hosts"].values()))
    assert proc.returncode == 0, result
    assert result["problems"] == []
    assert sorted(result["checked_hosts"]) == sorted(SERVERS + CLIENTS)
    assert "warnings" not in result, result.get("warnings")


def test_site_and_upgrade_read_the_example(example):
    inv, password = example
    for playbook in ("site.yml", "upgrade.yml", "upgrade_rollback.yml"):
        proc = ansible("ansible-playbook", REPO / "playbooks" / playbook, "-i", inv / "hosts.yml",
                       "--vault-password-file", password, "--syntax-check")
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_upgrade_rolls_the_servers_then_the_clients(example):
    inv, password = example
    proc = ansible("ansible-playbook", REPO / "playbooks" / "upgrade.yml", "-i", inv / "hosts.yml",
                   "--vault-password-file", password, "--list-hosts")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plays = re.findall(r"^  play #\d+ \(([^)]*)\): (.+?)\tTAGS: \[([^\]]*)\]\n    pattern: .*\n    hosts \(\d+\):\n"
                       r"((?:      \S+\n)*)", proc.stdout, re.M)
    hosts = {name: (tags, sorted(hosts.split())) for _pattern, name, tags, hosts in plays}
    assert hosts["Upgrade - name the snapshots and take the ZFS snapshots"] == ("snapshots", sorted(SERVERS + CLIENTS))
    assert hosts["Upgrade - Consul snapshot"] == ("snapshots", ["server1"])
    assert hosts["Upgrade - Nomad snapshot"] == ("snapshots", ["server1"])
    assert hosts["Upgrade - Vault snapshot"] == ("snapshots", SERVERS)
    assert hosts["Upgrade - roll the servers one at a time"] == ("roll", SERVERS)
    assert hosts["Upgrade - roll the other hosts (Consul agents, Nomad clients)"] == ("roll", CLIENTS)
    assert hosts["Upgrade - publish every host's addresses (the roles read the other hosts' from hostvars)"] == (
        "roll", sorted(SERVERS + CLIENTS))
    assert len(hosts) == 7
