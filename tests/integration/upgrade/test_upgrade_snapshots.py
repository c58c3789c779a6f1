"""playbooks/upgrade.yml's snapshots and playbooks/upgrade_rollback.yml, through ansible-playbook.

One host (this machine, connection local) is the whole cluster: the real Consul
1.8.7 as a dev agent with ACLs, and the Nomad and Vault simulators, each on a
free loopback port. A value is written to each before the snapshots, changed
after, and the rollback playbook brings each back (Consul with
`consul snapshot restore`). ZFS is covered in the OpenZFS VM (molecule/zfs).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.simulators.base import SimServer
from tests.simulators.nomad import NomadSim
from tests.simulators.vault import start_dev
from tests.support.consul import Consul
from tests.support.net import http

REPO = Path(__file__).resolve().parents[3]
ANSIBLE_BIN = Path(sys.executable).parent
PASSWORD = "upgrade-test-only-password"
NAME = "upgrade-it"


class Cluster:
    """The three APIs on loopback, their tokens, and an inventory pointing at them."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.consul_token = str(uuid.uuid4())
        self.consul_agent = Consul(tmp, master=self.consul_token)
        self.consul = self.consul_agent.address
        self.nomad_sim = SimServer(NomadSim(acl_enabled=True)).start()
        self.vault_token = "root-" + uuid.uuid4().hex
        self.vault_sim = start_dev(root_token=self.vault_token)
        self.nomad, self.vault = self.nomad_sim.address, self.vault_sim.address
        status, boot = http("POST", self.nomad + "/v1/acl/bootstrap")
        assert status == 200, boot
        self.nomad_token = boot["SecretID"]
        bindir = tmp / "bin"
        bindir.mkdir()
        (bindir / "consul").symlink_to(self.consul_agent.binary)
        self.bootstrap_file = tmp / "controller" / "bootstrap.vault.yml"
        self.bootstrap_file.parent.mkdir()
        plain = tmp / "bootstrap.plain.yml"
        plain.write_text(yaml.safe_dump({"consul": {"management_token": self.consul_token},
                                         "nomad": {"management_token": self.nomad_token},
                                         "vault": {"root_token": self.vault_token}}))
        (tmp / "vault-pass").write_text(PASSWORD + "\n")
        out = subprocess.run([str(ANSIBLE_BIN / "ansible-vault"), "encrypt", "--vault-password-file",
                              str(tmp / "vault-pass"), "--output", str(self.bootstrap_file), str(plain)],
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        plain.unlink()
        self.remote_dir = tmp / "host-snapshots"
        host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        groups = ("homelab", "consul_servers", "vault_servers", "nomad_servers")
        self.inventory = tmp / "inventory.yml"
        self.inventory.write_text(yaml.safe_dump({"all": {
            "vars": {"homelab_bootstrap_file": str(self.bootstrap_file), "homelab_bootstrap_password": PASSWORD,
                     "upgrade_consul_url": self.consul, "upgrade_nomad_url": self.nomad,
                     "upgrade_vault_url": self.vault, "upgrade_snapshot_remote_dir": str(self.remote_dir),
                     "hashicorp_release_bin_dir": str(bindir)},
            "children": {g: {"hosts": {"node": host}} for g in groups}}}))

    @property
    def consul_headers(self):
        return {"X-Consul-Token": self.consul_token}

    def playbook(self, name, *args):
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
                   ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
                   ANSIBLE_ROLES_PATH=str(REPO / "roles"))
        return subprocess.run([str(ANSIBLE_BIN / "ansible-playbook"), str(REPO / "playbooks" / name),
                               "-i", str(self.inventory), *args],
                              capture_output=True, text=True, timeout=300, env=env, check=False)

    # one value in each store
    def consul_kv(self, value=None):
        if value is not None:
            assert http("PUT", self.consul + "/v1/kv/homelab/upgrade-test", value, self.consul_headers)[0] == 200
        status, raw = http("GET", self.consul + "/v1/kv/homelab/upgrade-test?raw", headers=self.consul_headers)
        assert status == 200, raw
        return str(raw)

    def nomad_var(self, value=None):
        headers = {"X-Nomad-Token": self.nomad_token}
        url = self.nomad + "/v1/var/homelab/upgrade-test"
        if value is not None:
            body = {"Namespace": "default", "Path": "homelab/upgrade-test", "Items": {"v": value}}
            assert http("PUT", url, body, headers)[0] == 200
        status, var = http("GET", url, headers=headers)
        assert status == 200, var
        return var["Items"]["v"]

    def vault_secret(self, value=None):
        headers = {"X-Vault-Token": self.vault_token}
        url = self.vault + "/v1/secret/data/upgrade-test"
        if value is not None:
            assert http("POST", url, {"data": {"v": value}}, headers)[0] == 200
        status, secret = http("GET", url, headers=headers)
        assert status == 200, secret
        return secret["data"]["data"]["v"]

    def stop(self):
        self.nomad_sim.stop()
        self.vault_sim.stop()
        self.consul_agent.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("upgrade"))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def snapshots(cluster):
    """The state before, the snapshot run's output, and the state changed after it."""
    cluster.consul_kv("before")
    cluster.nomad_var("before")
    cluster.vault_secret("before")
    run = cluster.playbook("upgrade.yml", "--tags", "snapshots", "-e", "upgrade_snapshot_name=" + NAME)
    cluster.consul_kv("after")
    cluster.nomad_var("after")
    cluster.vault_secret("after")
    return run


def test_snapshots_are_taken_on_the_host_and_the_controller(cluster, snapshots):
    assert snapshots.returncode == 0, snapshots.stdout + snapshots.stderr
    controller = cluster.bootstrap_file.parent / "snapshots" / NAME
    for product in ("consul", "nomad", "vault"):
        for path in (controller / ("%s-node.snap" % product), cluster.remote_dir / NAME / ("%s-node.snap" % product)):
            assert path.stat().st_size > 0, path
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(controller.stat().st_mode) == 0o700
    assert (controller / "vault-node.snap").read_bytes()[:2] == b"\x1f\x8b"  # the simulator's gzip archive
    # the tokens never reach the output
    for token in (cluster.consul_token, cluster.nomad_token, cluster.vault_token):
        assert token not in snapshots.stdout + snapshots.stderr
    # the roll did not run under --tags snapshots
    roll = snapshots.stdout.split("PLAY [Upgrade - roll the servers one at a time]")[1]
    assert "TASK [" not in roll


def test_check_mode_takes_no_snapshot(cluster, snapshots):
    run = cluster.playbook("upgrade.yml", "--tags", "snapshots", "--check", "-e", "upgrade_snapshot_name=upgrade-check")
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (cluster.bootstrap_file.parent / "snapshots" / "upgrade-check").exists()
    assert not (cluster.remote_dir / "upgrade-check").exists()


def test_rollback_restores_each_snapshot(cluster, snapshots):
    assert (cluster.consul_kv(), cluster.nomad_var(), cluster.vault_secret()) == ("after", "after", "after")
    run = cluster.playbook("upgrade_rollback.yml", "-e", "upgrade_snapshot_name=" + NAME)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Restored snapshot" in run.stdout  # consul snapshot restore's own message
    assert (cluster.consul_kv(), cluster.nomad_var(), cluster.vault_secret()) == ("before", "before", "before")
    for token in (cluster.consul_token, cluster.nomad_token, cluster.vault_token):
        assert token not in run.stdout + run.stderr


def test_rollback_needs_the_snapshot_name(cluster):
    run = cluster.playbook("upgrade_rollback.yml")
    assert run.returncode != 0
    assert "upgrade_snapshot_name: set it to the upgrade's snapshot name" in run.stdout


def test_rollback_refuses_an_unknown_snapshot(cluster):
    run = cluster.playbook("upgrade_rollback.yml", "-e", "upgrade_snapshot_name=upgrade-nothing", "--tags", "consul")
    assert run.returncode != 0
    assert "No Consul snapshot in" in run.stdout
