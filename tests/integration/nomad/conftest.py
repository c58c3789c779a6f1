"""Fixtures: a Nomad to talk to (the simulator on loopback, or a real one from NOMAD_ADDR) and a module runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.simulators.base import SimServer  # noqa: E402
from tests.simulators.nomad import NomadSim  # noqa: E402

REAL = bool(os.environ.get("NOMAD_ADDR"))


class Nomad:
    def __init__(self, address: str, token: str | None, sim: NomadSim | None, server: SimServer | None):
        self.address, self.token, self.sim, self.server = address, token, sim, server

    def conn(self) -> dict:
        out = {"address": self.address}
        if self.token:
            out["token"] = self.token
        return out

    def set_outcome(self, outcome: str, job_id: str | None = None) -> None:
        assert self.sim is not None, "fault knobs exist only in the simulator"
        self.sim.set_outcome(outcome, job_id)


@pytest.fixture(scope="session")
def nomad():
    if REAL:
        yield Nomad(os.environ["NOMAD_ADDR"], os.environ.get("NOMAD_TOKEN"), None, None)
        return
    sim = NomadSim(acl_enabled=True, settle_seconds=0.3)
    server = SimServer(sim).start()
    import requests

    token = requests.post(server.address + "/v1/acl/bootstrap", timeout=5).json()["SecretID"]
    try:
        yield Nomad(server.address, token, sim, server)
    finally:
        server.stop()


def _make_pki(directory: str) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    files: dict[str, str] = {}

    def write(name: str, data: bytes) -> str:
        path = os.path.join(directory, name)
        with open(path, "wb") as fh:
            fh.write(data)
        files[name] = path
        return path

    def key_pem(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test nomad CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(hours=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    write("ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    for name, usage, san in (("server", ExtendedKeyUsageOID.SERVER_AUTH, True),
                             ("client", ExtendedKeyUsageOID.CLIENT_AUTH, False)):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "%s.global.nomad" % name)]))
                   .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(hours=2))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if san:
            import ipaddress

            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        write("%s.pem" % name, cert.public_bytes(serialization.Encoding.PEM))
        write("%s-key.pem" % name, key_pem(key))
    return files


@pytest.fixture(scope="session")
def tls_nomad(tmp_path_factory):
    """The simulator behind HTTPS with mutual TLS (Nomad's tls { verify_https_client = true })."""
    import ssl

    pki = _make_pki(str(tmp_path_factory.mktemp("nomad-pki")))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server.pem"], pki["server-key.pem"])
    ctx.load_verify_locations(pki["ca.pem"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = SimServer(NomadSim(), ssl_context=ctx).start()
    try:
        yield server.address, pki
    finally:
        server.stop()


@pytest.fixture
def job_id():
    """A job ID unique per test (tests run in parallel and may share a real Nomad)."""
    return "itest-" + uuid.uuid4().hex[:8]


def _run(module: str, args: dict, check: bool = False, diff: bool = False, env: dict | None = None) -> dict:
    payload = dict(args)
    payload["_ansible_check_mode"] = check
    payload["_ansible_diff"] = diff
    payload.setdefault("_ansible_tmpdir", tempfile.gettempdir())
    payload.setdefault("_ansible_remote_tmp", tempfile.gettempdir())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, fh)
        path = fh.name
    try:
        given = env or {}
        env = dict(os.environ)
        if not REAL:
            env.pop("NOMAD_ADDR", None)
        env.update(given)
        proc = subprocess.run([sys.executable, "-m", "ansible_collections.selfhost.homelab.plugins.modules." + module,
                               path], capture_output=True, text=True, timeout=120, env=env, cwd=REPO, check=False)
    finally:
        os.unlink(path)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module printed no JSON: rc=%s stdout=%s stderr=%s"
                             % (proc.returncode, proc.stdout, proc.stderr))
    result["_rc"] = proc.returncode
    return result


@pytest.fixture
def run_module():
    return _run


@pytest.fixture
def run_job(nomad):
    def run(check: bool = False, diff: bool = False, **args):
        return _run("nomad_job", {**nomad.conn(), **args}, check, diff)

    return run


@pytest.fixture
def job_info(nomad):
    def run(**args):
        return _run("nomad_job_info", {**nomad.conn(), **args})

    return run


def pytest_collection_modifyitems(config, items):
    if not REAL:
        return
    skip = pytest.mark.skip(reason="needs the simulator's fault knobs; NOMAD_ADDR points at a real Nomad")
    for item in items:
        if "simulator_only" in item.keywords:
            item.add_marker(skip)
