"""The Traefik job runs for real: the role submits it to the Nomad simulator running as an agent
(server + client, docker driver), which renders its templates with the secret from the Vault
simulator (JWT login with the job's workload identity, as the vault role configures it), starts
the locally built Traefik image (scripts/bootstrap.d/agents.sh) as a container and registers the
`traefik` service in Consul 1.8.7 (ACLs on) with its /ping check. The container then routes the
four apps registered in Consul by Host header. ACME is off here (test_traefik_dns01 covers it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests
from ansible_collections.selfhost.homelab.plugins.filter.vault_job import vault_job

from .conftest import DOMAIN, REPO, Process, base_vars, failure, free_port, https_get, run_role, wait_for
from .test_traefik_routing import APPS, DASHBOARD_USER, Responder, _htpasswd

IMAGE = "traefik:v3.7"


def _docker_image_present(image: str) -> bool:
    try:
        return subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=60,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Vault:
    def __init__(self, workdir):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = Process([sys.executable, "-m", "tests.simulators.vault", "server", "-dev",
                             "-dev-root-token-id=root", "-dev-listen-address=127.0.0.1:%d" % self.port],
                            workdir / "vault.log", env=dict(os.environ), cwd=str(REPO))
        wait_for(lambda: self.proc.alive() and requests.get(self.url + "/v1/sys/health", timeout=2).ok, 30,
                 "the Vault simulator")

    def req(self, method, path, body=None):
        resp = requests.request(method, "%s/v1/%s" % (self.url, path), json=body, timeout=10,
                                headers={"X-Vault-Token": "root"})
        assert resp.status_code in (200, 204), "%s %s: %s %s" % (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else None


NOMAD_HCL = """
data_dir = "%(data)s"
bind_addr = "127.0.0.1"
disable_update_check = true
ports {
  http = %(port)d
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
}
consul {
  address = "%(consul)s"
  token   = "%(consul_token)s"
}
vault {
  enabled = true
  address = "%(vault)s"
  jwt_auth_backend_path = "jwt-nomad"
  default_identity {
    aud = ["vault.io"]
    ttl = "1h"
  }
}
plugin "docker" {
  config {
    allow_privileged = false
  }
}
"""


@pytest.fixture(scope="module")
def on_nomad(tmp_path_factory, consul):
    if not _docker_image_present(IMAGE):
        pytest.fail("the local image %s is missing (scripts/bootstrap.d/agents.sh builds it) or docker is down"
                    % IMAGE)
    work = tmp_path_factory.mktemp("traefik-nomad")
    procs = []
    responders = {}
    sids = []
    nomad_url = None
    try:
        vault = Vault(work)
        procs.append(vault.proc)
        nomad_port = free_port()
        (work / "nomad.d").mkdir()
        (work / "nomad.d" / "nomad.hcl").write_text(NOMAD_HCL % {
            "data": work / "nomad-data", "port": nomad_port, "consul": consul.address,
            "consul_token": consul.MASTER, "vault": vault.url})
        nomad = Process([sys.executable, "-m", "tests.simulators.nomad", "agent", "-config", str(work / "nomad.d")],
                        work / "nomad.log", env=dict(os.environ), cwd=str(REPO))
        procs.append(nomad)
        nomad_url = "http://127.0.0.1:%d" % nomad_port
        wait_for(lambda: nomad.alive() and requests.get(nomad_url + "/v1/agent/health", timeout=2).ok, 60,
                 "the Nomad simulator")
        # Vault as the vault role leaves it: KV v2, the job's secret, its policy and JWT role by the naming rule.
        naming = vault_job("traefik", "kv", {"do_auth_token": "DO_AUTH_TOKEN"})
        vault.req("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
        vault.req("POST", "kv/data/traefik", {"data": {"consul_token": consul.traefik_token,
                                                       "dashboard_users": _htpasswd(*DASHBOARD_USER)}})
        vault.req("POST", "sys/auth/jwt-nomad", {"type": "jwt"})
        vault.req("POST", "auth/jwt-nomad/config", {"jwks_url": nomad_url + "/.well-known/jwks.json",
                                                    "jwt_supported_algs": ["RS256"]})
        vault.req("POST", "sys/policies/acl/traefik", {"policy": naming["policy"]})
        vault.req("POST", "auth/jwt-nomad/role/traefik", naming["jwt_role"])

        for name in APPS:
            responders[name] = Responder(name)
            sids.append(consul.register(name, responders[name].port, ["traefik.enable=true"]))
        ports = {"http": free_port(), "https": free_port()}
        rc, out = run_role(work / "role", nomad_url, base_vars(
            traefik_image=IMAGE, traefik_acme_enabled=False, traefik_http_port=ports["http"],
            traefik_https_port=ports["https"], traefik_consul_address=consul.address,
            traefik_consul_refresh_interval="2s", traefik_nomad_wait_timeout=120))
        assert rc == 0, "%s\n--- nomad log:\n%s" % (failure(out), nomad.output()[-4000:])
        yield {"nomad": nomad_url, "ports": ports, "out": out}
    finally:
        allocs = []
        if nomad_url:
            try:
                allocs = [a["ID"] for a in requests.get(nomad_url + "/v1/job/traefik/allocations", timeout=10).json()]
                requests.delete(nomad_url + "/v1/job/traefik?purge=true", timeout=30)
            except (requests.RequestException, ValueError, TypeError):
                pass
        for proc in reversed(procs):
            proc.stop()
        # The simulator stops its containers; remove any left behind, by this run's allocation IDs only.
        for alloc in allocs:
            subprocess.run("docker ps -aq --filter label=com.hashicorp.nomad.alloc_id=%s | xargs -r docker rm -f"
                           % alloc, shell=True, capture_output=True, timeout=60, check=False)
        for sid in sids:
            consul.api("PUT", "/v1/agent/service/deregister/%s" % sid)
        for r in responders.values():
            r.stop()


def test_traefik_service_is_in_consul_with_a_passing_ping_check(on_nomad, consul):
    entries = wait_for(lambda: consul.api("GET", "/v1/health/service/traefik?passing=true"), 60,
                       "a passing traefik service")
    service = entries[0]["Service"]
    assert service["Tags"] == ["metrics"] and service["Meta"]["metrics_path"] == "/metrics"
    assert [c["Status"] for c in entries[0]["Checks"] if c["ServiceName"] == "traefik"] == ["passing"]
    # What the monitoring role scrapes: the service's address and port, at its metrics_path.
    metrics = requests.get("http://%s:%d/metrics" % (service["Address"], service["Port"]), timeout=5)
    assert metrics.status_code == 200 and "traefik_" in metrics.text


def test_the_container_routes_every_app_by_host(on_nomad):
    port = on_nomad["ports"]["https"]

    def answer_of(host):
        reply = https_get(port, host)
        return reply if reply[0] == 200 else None

    for app in APPS:
        body = wait_for(lambda a=app: answer_of("%s.%s" % (a, DOMAIN)), 60, "%s routed" % app)[2]
        assert json.loads(body)["app"] == app
    assert https_get(port, "nosuch.%s" % DOMAIN)[0] == 404
    resp = requests.get("http://127.0.0.1:%d/" % on_nomad["ports"]["http"], headers={"Host": "plex.%s" % DOMAIN},
                        allow_redirects=False, timeout=10)
    assert resp.status_code in (301, 308) and resp.headers["Location"].startswith("https://plex.%s" % DOMAIN)
    dashboard = "traefik.%s" % DOMAIN
    wait_for(lambda: https_get(port, dashboard, "/dashboard/")[0] != 404, 30, "the dashboard router")
    assert https_get(port, dashboard, "/dashboard/")[0] == 401
    assert https_get(port, dashboard, "/dashboard/", auth=DASHBOARD_USER)[0] == 200
