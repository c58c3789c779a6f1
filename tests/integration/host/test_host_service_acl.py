"""Host services in Consul under default-deny ACLs, against the real Consul 1.8.7.

The host layer (dnscrypt_proxy, host_metrics) writes its services' definitions
through the consul role's ``host_service`` entry point before Consul runs; Consul
registers a file-defined service with the token in its definition, else with the
default (anonymous) token, which must not write services. This runs that entry
point on this machine (connection local, a temporary config directory, the
test's own group instead of ``consul``), starts a Consul server on free loopback
ports with that directory, runs the consul role's ACL tasks (they create the
service's own token from the bootstrap file), reloads Consul as the role's
handler does (SIGHUP), and asserts the service is registered and passing, that
its token writes that one service only, and that a second run changes nothing.
"""

import grp
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.consul import Consul

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = Path(__file__).parent / "files" / "host_service_acl.yml"
ANSIBLE_BIN = Path(sys.executable).parent
PASSWORD = "host-service-acl-test-password"


@pytest.fixture
def box(tmp_path):
    """An inventory of this machine (connection local) in the Consul servers' group, and its variables."""
    master, agent = str(uuid.uuid4()), str(uuid.uuid4())
    bootstrap = tmp_path / "bootstrap.yml"
    config_dir = tmp_path / "consul.d"
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"children": {
        "homelab": {"hosts": {"box": None}}, "consul_servers": {"hosts": {"box": None}}}}}))
    extra = {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "site_config_dir": str(config_dir), "homelab_bootstrap_file": str(bootstrap),
        "homelab_bootstrap_password": PASSWORD,
        # the group the test runs as stands in for `consul` (no system group is made on this machine)
        "consul_host_service_group": grp.getgrgid(os.getgid()).gr_name,
    }
    # What the consul role's configure step keeps before its ACL step (management and agent tokens).
    plain = tmp_path / "bootstrap.plain.yml"
    plain.write_text(json.dumps({"consul": {"management_token": master, "agent_token": agent, "tokens": {}}}))
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    subprocess.run([str(ANSIBLE_BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password_file),
                    "--output", str(bootstrap), str(plain)], check=True, capture_output=True, timeout=60)
    plain.unlink()
    return {"inventory": inventory, "extra": extra, "config_dir": config_dir, "master": master, "agent": agent,
            "tmp": tmp_path, "bootstrap": bootstrap, "password_file": password_file}


def play(box, step: str, **more):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_LOCALHOST_WARNING="false")
    extra = dict(box["extra"], site_step=step, **more)
    proc = subprocess.run([str(ANSIBLE_BIN / "ansible-playbook"), "-i", str(box["inventory"]), str(PLAYBOOK),
                           "-e", json.dumps(extra)], capture_output=True, text=True, env=env, timeout=300,
                          cwd=REPO, check=False)
    assert proc.returncode == 0, "%s step failed:\n%s\n%s" % (step, proc.stdout[-6000:], proc.stderr[-3000:])
    return json.loads(proc.stdout)["stats"]["box"]


def bootstrap_content(box) -> dict:
    out = subprocess.run([str(ANSIBLE_BIN / "ansible-vault"), "view", "--vault-password-file",
                          str(box["password_file"]), str(box["bootstrap"])],
                         check=True, capture_output=True, text=True, timeout=60)
    import yaml

    return yaml.safe_load(out.stdout)


def test_host_service_registers_with_its_own_token_under_default_deny(box):
    # The host layer, before Consul exists: the definition with its own token, the secret kept.
    assert play(box, "definition")["changed"] > 0
    definition_file = box["config_dir"] / "dnscrypt-proxy.json"
    mode = definition_file.stat().st_mode & 0o777
    assert mode == 0o640, oct(mode)
    definition = json.loads(definition_file.read_text())["service"]
    assert definition["name"] == "dnscrypt-proxy"
    secret = bootstrap_content(box)["consul"]["host_service_tokens"]["dnscrypt-proxy"]
    assert definition["token"] == secret
    assert play(box, "definition")["changed"] == 0, "a second run of the entry point changed something"

    # One server with ACLs on (default deny) reading the host layer's config directory.
    consul = Consul(box["tmp"], dev=False, master=box["master"], agent=box["agent"], config_dir=box["config_dir"])
    try:
        # The consul role's ACL step: creates the policy and the token with the kept secret.
        play(box, "acl", consul_http_port=consul.http_port)
        status, self_ = consul.api("GET", "/acl/token/self", token=secret)
        assert status == 200, self_
        assert [p["Name"] for p in self_["Policies"]] == ["host-service-dnscrypt-proxy"]
        status, policy = consul.api("GET", "/acl/policy/name/host-service-dnscrypt-proxy")
        assert policy["Rules"] == 'service "dnscrypt-proxy" {\n  policy = "write"\n}\n'

        consul.reload()
        consul.proc.wait_for(lambda: consul.api("GET", "/health/service/dnscrypt-proxy?passing=true")[1], 60,
                             "passing dnscrypt-proxy in the catalog")

        # Least privilege: the token writes its one service only; anonymous requests write nothing.
        register = "/agent/service/register"
        assert consul.api("PUT", register, {"Name": "not-a-host-service", "Port": 1}, token=secret)[0] == 403
        assert consul.api("PUT", register, {"Name": "dnscrypt-proxy-2", "Port": 1}, token="")[0] == 403
        status, anonymous = consul.api("GET", "/acl/token/00000000-0000-0000-0000-000000000002")
        assert [p["Name"] for p in anonymous["Policies"] or []] == ["anonymous-read"]

        # The role's ACL step again: nothing to change.
        assert play(box, "acl", consul_http_port=consul.http_port)["changed"] == 0
    finally:
        consul.stop()
    assert "blocked by ACLs" not in consul.output().split("Caught signal: hangup")[-1], consul.output()[-4000:]


def test_without_acls_the_definition_has_no_token(box):
    play(box, "definition", consul_host_service_acl=False)
    definition_file = box["config_dir"] / "dnscrypt-proxy.json"
    assert definition_file.stat().st_mode & 0o777 == 0o644
    assert "token" not in json.loads(definition_file.read_text())["service"]
    assert "host_service_tokens" not in bootstrap_content(box)["consul"]
