"""Routing, for real: traefik with the role's static configuration against Consul 1.8.7.

Four services registered as the app jobs register them (photos, cloud, plex,
torrents, tagged traefik.enable=true, each backed by a small HTTP responder on
loopback) are routed by Host header at <name>.<domain>; an unknown host gets
404; a healthy service without the opt-in tag is not exposed; plain HTTP is
redirected to HTTPS; the dashboard answers only with basic auth. Traefik reads
Consul with the read-only ACL token the job's template takes from Vault.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from .conftest import DOMAIN, Task, base_vars, deploy, free_ports, https_get, wait_for

APPS = ("photos", "cloud", "plex", "torrents")
DASHBOARD_USER = ("admin", "s3cret-dashboard")


class Responder:
    """An app stand-in: answers every request with its name and the Host it saw."""

    def __init__(self, name: str):
        app = name

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                body = json.dumps({"app": app, "host": self.headers.get("Host"),
                                   "proto": self.headers.get("X-Forwarded-Proto")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _htpasswd(user: str, password: str) -> str:
    """An htpasswd line (Apache MD5), as `htpasswd -nm` writes it."""
    import subprocess

    hashed = subprocess.run(["openssl", "passwd", "-apr1", password], capture_output=True, text=True, check=True,
                            timeout=10).stdout.strip()
    return "%s:%s" % (user, hashed)


@pytest.fixture(scope="module")
def routed(tmp_path_factory, consul):
    work = tmp_path_factory.mktemp("traefik-routing")
    ports = free_ports("http", "https", "ping")
    job = deploy(work / "role", base_vars(traefik_acme_enabled=False, traefik_consul_address=consul.address,
                                          traefik_consul_refresh_interval="2s"))
    responders = {name: Responder(name) for name in (*APPS, "hidden")}
    sids = [consul.register(name, responders[name].port, ["traefik.enable=true"]) for name in APPS]
    # Healthy and in Consul, but not opted in.
    sids.append(consul.register("hidden", responders["hidden"].port, ["hidden"]))
    # Opted in behind the role's basic-auth middleware (as the monitoring role routes Prometheus).
    responders["prometheus"] = Responder("prometheus")
    sids.append(consul.register("prometheus", responders["prometheus"].port, [
        "traefik.enable=true", "traefik.http.routers.prometheus.middlewares=auth@file"]))
    task = Task(job, work / "task", ports, {"consul_token": consul.traefik_token,
                                            "dashboard_users": _htpasswd(*DASHBOARD_USER)})
    traefik = task.start_traefik()
    try:
        def all_routed():
            assert traefik.alive(), traefik.output()
            return all(https_get(ports["https"], "%s.%s" % (n, DOMAIN))[0] == 200 for n in APPS) \
                and https_get(ports["https"], "prometheus.%s" % DOMAIN)[0] == 401

        wait_for(all_routed, 90, "Traefik to route the four apps")
        yield {"ports": ports, "task": task, "traefik": traefik}
    finally:
        traefik.stop()
        for sid in sids:
            consul.api("PUT", "/v1/agent/service/deregister/%s" % sid)
        for r in responders.values():
            r.stop()


@pytest.mark.parametrize("app", APPS)
def test_each_app_is_routed_by_host(routed, app):
    status, _headers, body, _der = https_get(routed["ports"]["https"], "%s.%s" % (app, DOMAIN))
    assert status == 200
    seen = json.loads(body)
    assert seen == {"app": app, "host": "%s.%s" % (app, DOMAIN), "proto": "https"}


def test_unknown_host_is_404(routed):
    assert https_get(routed["ports"]["https"], "nosuch.%s" % DOMAIN)[0] == 404


def test_service_without_the_opt_in_tag_is_not_exposed(routed, consul):
    health = consul.api("GET", "/v1/health/service/hidden?passing=true")
    assert len(health) == 1, "the hidden service must be registered and healthy for this test to mean anything"
    assert https_get(routed["ports"]["https"], "hidden.%s" % DOMAIN)[0] == 404


def test_http_redirects_to_https(routed):
    port = routed["ports"]["http"]
    resp = requests.get("http://127.0.0.1:%d/some/path?x=1" % port, headers={"Host": "photos.%s" % DOMAIN},
                        allow_redirects=False, timeout=10)
    assert resp.status_code in (301, 308)
    # To the HTTPS entry point's port (443 in production, where the port is left out of the URL).
    assert resp.headers["Location"] == "https://photos.%s:%d/some/path?x=1" % (DOMAIN, routed["ports"]["https"])
    # Nothing is served over plain HTTP, not even an unknown host.
    resp = requests.get("http://127.0.0.1:%d/" % port, headers={"Host": "nosuch.%s" % DOMAIN},
                        allow_redirects=False, timeout=10)
    assert resp.status_code in (301, 308)


def test_dashboard_only_behind_auth(routed):
    port = routed["ports"]["https"]
    host = "traefik.%s" % DOMAIN
    assert https_get(port, host, "/dashboard/")[0] == 401
    assert https_get(port, host, "/api/http/routers")[0] == 401
    assert https_get(port, host, "/api/http/routers", auth=(DASHBOARD_USER[0], "wrong"))[0] == 401
    status, _h, body, _d = https_get(port, host, "/api/http/routers", auth=DASHBOARD_USER)
    assert status == 200
    rules = {r["rule"] for r in json.loads(body)}
    assert {"Host(`%s.%s`)" % (app, DOMAIN) for app in APPS} <= rules
    assert not any("hidden" in rule for rule in rules)
    assert https_get(port, host, "/dashboard/", auth=DASHBOARD_USER)[0] == 200
    # The API is on no other entry point (api.insecure is off): not on ping, not over plain HTTP.
    ping = routed["ports"]["ping"]
    assert requests.get("http://127.0.0.1:%d/ping" % ping, timeout=5).text == "OK"
    assert requests.get("http://127.0.0.1:%d/api/rawdata" % ping, timeout=5).status_code == 404


def test_traefik_read_consul_with_the_token_from_vault(routed, consul):
    task = routed["task"]
    assert task.reads and set(task.reads) == {"kv/data/traefik"}
    config = (task.taskdir / "local" / "traefik.yml").read_text()
    assert consul.traefik_token in config
    assert consul.MASTER not in config


def test_a_service_naming_the_auth_middleware_is_guarded(routed):
    port = routed["ports"]["https"]
    host = "prometheus.%s" % DOMAIN
    assert https_get(port, host)[0] == 401
    assert https_get(port, host, auth=(DASHBOARD_USER[0], "wrong"))[0] == 401
    status, _h, body, _d = https_get(port, host, auth=DASHBOARD_USER)
    assert status == 200 and json.loads(body)["app"] == "prometheus"


def test_metrics_on_the_internal_port_only(routed):
    ping = routed["ports"]["ping"]
    metrics = requests.get("http://127.0.0.1:%d/metrics" % ping, timeout=5)
    assert metrics.status_code == 200
    assert "traefik_entrypoint_requests_total" in metrics.text or "traefik_config_reloads_total" in metrics.text
    assert https_get(routed["ports"]["https"], "photos.%s" % DOMAIN, "/metrics")[2].startswith('{"app": "photos"')
