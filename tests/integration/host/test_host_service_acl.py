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
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("HOMELAB_CACHE") or Path.home() / ".cache" / "selfhost-homelab")
PLAYBOOK = Path(__file__).parent / "files" / "host_service_acl.yml"
ANSIBLE_BIN = Path(sys.executable).parent
PASSWORD = "host-service-acl-test-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def consul_bin() -> Path:
    """The real Consul (Debian bullseye's 1.8.7), fetched by scripts/bootstrap.d/agents.sh."""
    path = CACHE / "debs" / "bullseye" / "consul" / "usr" / "bin" / "consul"
    if not path.exists():
        subprocess.run(["bash", str(REPO / "scripts" / "bootstrap.d" / "agents.sh")], check=True, timeout=600)
    assert path.exists(), "consul was not fetched by scripts/bootstrap.d/agents.sh"
    return path


class Consul:
    """A one-server Consul with ACLs on, default deny, reading the test's config directory."""

    def __init__(self, workdir: Path, config_dir: Path, master: str, agent: str):
        self.master = master
        self.http_port = free_port()
        ports = {"http": self.http_port, "dns": -1, "grpc": -1, "serf_lan": free_port(), "serf_wan": free_port(),
                 "server": free_port()}
        (workdir / "base.hcl").write_text(
            "disable_update_check = true\n"
            "ports { %s }\n"
            'acl {\n  enabled = true\n  default_policy = "deny"\n  down_policy = "extend-cache"\n'
            '  tokens {\n    master = "%s"\n    agent = "%s"\n  }\n}\n'
            % (" ".join("%s = %d" % kv for kv in ports.items()), master, agent))
        self.log = open(workdir / "consul.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(consul_bin()), "agent", "-server", "-bootstrap-expect", "1", "-bind", "127.0.0.1",
             "-client", "127.0.0.1", "-data-dir", str(workdir / "data"), "-node", "acl-it-%s" % uuid.uuid4().hex[:8],
             "-config-file", str(workdir / "base.hcl"), "-config-dir", str(config_dir)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = "http://127.0.0.1:%d/v1" % self.http_port
        self.logfile = workdir / "consul.log"
        self.wait(lambda: self.get("/status/leader", token="")[1], 90, "a leader")
        # ACLs work once the management token is accepted
        self.wait(lambda: self.get("/acl/token/self")[0] == 200, 60, "the management token")

    def output(self) -> str:
        return self.logfile.read_text(errors="replace")

    def wait(self, probe, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("consul exited:\n" + self.output())
            try:
                result = probe()
                if result:
                    return result
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise AssertionError("consul: no %s within %ss:\n%s" % (what, timeout, self.output()[-4000:]))

    def get(self, path: str, token: str | None = None):
        headers = {"X-Consul-Token": self.master if token is None else token} if token != "" else {}
        resp = requests.get(self.url + path, headers=headers, timeout=5)
        return resp.status_code, (resp.json() if resp.content and resp.status_code == 200 else resp.text)

    def put(self, path: str, body, token: str | None):
        headers = {"X-Consul-Token": token} if token else {}
        return requests.put(self.url + path, json=body, headers=headers, timeout=5).status_code

    def reload(self):
        """What the role's handler does (systemctl reload consul: ExecReload sends SIGHUP)."""
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


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

    consul = Consul(box["tmp"], box["config_dir"], box["master"], box["agent"])
    try:
        # The consul role's ACL step: creates the policy and the token with the kept secret.
        play(box, "acl", consul_http_port=consul.http_port)
        status, self_ = consul.get("/acl/token/self", token=secret)
        assert status == 200, self_
        assert [p["Name"] for p in self_["Policies"]] == ["host-service-dnscrypt-proxy"]
        status, policy = consul.get("/acl/policy/name/host-service-dnscrypt-proxy")
        assert policy["Rules"] == 'service "dnscrypt-proxy" {\n  policy = "write"\n}\n'

        consul.reload()
        consul.wait(lambda: consul.get("/health/service/dnscrypt-proxy?passing=true")[1], 60,
                    "passing dnscrypt-proxy in the catalog")

        # Least privilege: the token writes its one service only; anonymous requests write nothing.
        assert consul.put("/agent/service/register", {"Name": "not-a-host-service", "Port": 1}, secret) == 403
        assert consul.put("/agent/service/register", {"Name": "dnscrypt-proxy-2", "Port": 1}, None) == 403
        status, anonymous = consul.get("/acl/token/00000000-0000-0000-0000-000000000002")
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
