"""Fixtures for the agent tests: the release mirror, the unpacked executables, and
processes started on free loopback ports, each bounded in time and stopped by the test."""

from __future__ import annotations

import json
import os
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from tests.support.consul import Consul
from tests.support.net import free_port, http
from tests.support.process import Proc, wait

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def procs():
    """Start programs with ``procs(argv, name)``; every one is stopped when the test ends."""
    started: list[Proc] = []

    def start(argv, log: Path, **kwargs) -> Proc:
        proc = Proc(argv, log, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        proc.stop()


@pytest.fixture(scope="session")
def release_mirror() -> Path:
    """The local release mirror (built by scripts/bootstrap.d/agents.sh; built here if missing)."""
    out = subprocess.run([str(REPO / "scripts" / "release-mirror" / "build.sh")], check=True,
                         capture_output=True, text=True, timeout=300)
    return Path(out.stdout.strip().splitlines()[-1])


def _install(mirror: Path, product: str, dest: Path) -> Path:
    index = json.loads((mirror / product / "index.json").read_text())
    (version, release), = index["versions"].items()
    build = release["builds"][0]
    with zipfile.ZipFile(mirror / product / build["url"]) as zf:
        zf.extract(product, dest)
    exe = dest / product
    exe.chmod(0o755)
    return exe


@pytest.fixture(scope="session")
def agent_bin(release_mirror, tmp_path_factory) -> Path:
    """A bin directory holding `nomad` and `vault` unpacked from the mirror's release zips."""
    dest = tmp_path_factory.mktemp("bin")
    for product in ("nomad", "vault"):
        _install(release_mirror, product, dest)
    return dest


SERVER_SCRIPT = r'''
import http.server, os, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("job=%s task=%s greeting=%s\n" % (os.environ["NOMAD_JOB_NAME"], os.environ["NOMAD_TASK_NAME"],
                                                  os.environ.get("GREETING", "<unset>"))).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
socketserver.TCPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["NOMAD_PORT_http"])), H).serve_forever()
'''

STANDIN_IMAGE = "selfhost-homelab/standin:latest"
# Images whose software cannot exist here, declared to the client as stand-ins.
DECLARED_STANDINS = ("grafana/grafana", "photoprism/photoprism:240915")


class Stack:
    def __init__(self, consul, vault, nomad, root, nomad_data):
        self.consul, self.vault, self.nomad, self.root, self.nomad_data = consul, vault, nomad, root, nomad_data

    def vault_req(self, method, path, body=None):
        return http(method, "%s/v1/%s" % (self.vault, path), body, {"X-Vault-Token": self.root})

    def run_job(self, hcl):
        status, job = http("POST", self.nomad + "/v1/jobs/parse", {"JobHCL": hcl, "Canonicalize": True})
        assert status == 200, job
        status, out = http("PUT", self.nomad + "/v1/jobs", {"Job": job})
        assert status == 200, out
        return job["ID"]

    def allocs(self, job_id):
        status, allocs = http("GET", "%s/v1/job/%s/allocations" % (self.nomad, job_id))
        assert status == 200, allocs
        return allocs

    def alloc(self, alloc_id):
        return http("GET", "%s/v1/allocation/%s" % (self.nomad, alloc_id))[1]


@pytest.fixture(scope="module")
def stack(agent_bin, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    procs = []
    try:
        consul = Consul(tmp)
        procs.append(consul)
        consul_port, consul_addr = consul.http_port, consul.address

        nomad_port, vault_port = free_port(), free_port()
        nomad_addr, vault_addr = "http://127.0.0.1:%d" % nomad_port, "http://127.0.0.1:%d" % vault_port
        conf = tmp / "nomad.d"
        conf.mkdir()
        (conf / "nomad.hcl").write_text('''
data_dir = "%s"
bind_addr = "127.0.0.1"
disable_update_check = true
ports {
  http = %d
}
server {
  enabled = true
  bootstrap_expect = 1
}
client {
  enabled = true
  meta {
    ingress = "true"
  }
  host_volume "photos" {
    path = "%s"
  }
  host_volume "originals" {
    path      = "%s"
    read_only = true
  }
}
consul {
  address = "127.0.0.1:%d"
}
vault {
  enabled = true
  address = "%s"
  jwt_auth_backend_path = "jwt-nomad"
  default_identity {
    aud = ["vault.io"]
    ttl = "1h"
  }
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
plugin "docker" {
  config {
    allow_privileged = false
  }
}
''' % (tmp / "nomad-data", nomad_port, tmp / "photos", tmp / "originals", consul_port, vault_addr))
        (tmp / "photos").mkdir()
        (tmp / "originals").mkdir()
        (tmp / "originals" / "IMG_0001.jpg").write_text("a photo\n")
        nomad = Proc([str(agent_bin / "nomad"), "agent", "-config", str(conf)], tmp / "nomad.log",
                     env=dict(os.environ, NOMAD_SIM_STANDIN_IMAGES=",".join(DECLARED_STANDINS)))
        procs.append(nomad)
        vault = Proc([str(agent_bin / "vault"), "server", "-dev", "-dev-root-token-id=root",
                      "-dev-listen-address=127.0.0.1:%d" % vault_port], tmp / "vault.log")
        procs.append(vault)
        nomad.wait_http(nomad_addr + "/v1/agent/health")
        vault.wait_http(vault_addr + "/v1/sys/health")
        (tmp / "nomad-data" / "server.py").write_text(SERVER_SCRIPT)
        st = Stack(consul_addr, vault_addr, nomad_addr, "root", tmp / "nomad-data")
        st.tmp = tmp
        st.consul_port = consul_port
        # Vault as the vault role configures it: KV v2, a secret, per-job policies and JWT roles.
        assert st.vault_req("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})[0] == 204
        assert st.vault_req("POST", "kv/data/whoami", {"data": {"greeting": "s3cr3t-from-vault"}})[0] == 200
        assert st.vault_req("POST", "sys/auth/jwt-nomad", {"type": "jwt"})[0] == 204
        status, out = st.vault_req("POST", "auth/jwt-nomad/config", {
            "jwks_url": nomad_addr + "/.well-known/jwks.json", "jwt_supported_algs": ["RS256"],
            "default_role": "nomad-workloads"})
        assert status == 204, out
        for job, policy_path in (("whoami", "kv/data/whoami"), ("denied", "kv/data/denied"),
                                 ("photos", "kv/data/whoami"), ("nope", "kv/data/whoami"),
                                 ("gallery", "kv/data/whoami")):
            policy = 'path "%s" {\n  capabilities = ["read"]\n}\n' % policy_path
            assert st.vault_req("POST", "sys/policies/acl/%s" % job, {"policy": policy})[0] == 204
            status, out = st.vault_req("POST", "auth/jwt-nomad/role/%s" % job, {
                "role_type": "jwt", "bound_audiences": ["vault.io"], "user_claim": "/nomad_job_id",
                "user_claim_json_pointer": True, "bound_claims": {"nomad_job_id": job},
                "token_policies": [job], "token_type": "service"})
            assert status == 204, out
        yield st
        # The agent leaves its tasks running when it stops (it re-attaches on restart), so the
        # jobs are purged first.
        for job in http("GET", nomad_addr + "/v1/jobs")[1]:
            http("DELETE", "%s/v1/job/%s?purge=true" % (nomad_addr, job["ID"]))
        wait(lambda: not [a for a in http("GET", nomad_addr + "/v1/allocations")[1]
                          if a["ClientStatus"] in ("pending", "running")], timeout=60, what="allocations to stop")
        time.sleep(1)
    finally:
        for proc in reversed(procs):
            proc.stop()
