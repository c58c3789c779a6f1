"""The traefik role's job, as Nomad sees it: through ansible-playbook against the Nomad API simulator.

The job the role submits is parsed by Nomad's /v1/jobs/parse (the simulator's
HCL2 parser), validates against Nomad's Job schema (the vendored OpenAPI
description, tests/simulators/nomad/spec), is registered, and a second run
changes nothing. Check mode registers nothing. Bad input fails before any
request to Nomad, with a message naming the variable.
"""

from __future__ import annotations

import json

import pytest
import requests
import yaml

from tests.nomad_jobschema import assert_valid_job

from .conftest import DOMAIN, base_vars, failure, nomad_sim, run_role, task_results

SUBMIT = "Submit the Traefik job and wait until its deployment is healthy"


def _submit_result(out):
    found = [result for name, result in task_results(out) if name.endswith(SUBMIT)]
    assert len(found) == 1, [name for name, _r in task_results(out)]
    return found[0]


@pytest.fixture(scope="module")
def submitted(tmp_path_factory):
    work = tmp_path_factory.mktemp("traefik-job")
    data = {"homelab_data_root": str(work / "data")}  # one data root for both runs
    with nomad_sim() as server:
        rc, first = run_role(work / "first", server.address, base_vars(**data))
        assert rc == 0, failure(first)
        parses = server.count("POST", "/v1/jobs/parse") + server.count("PUT", "/v1/jobs/parse")
        job = requests.get(server.address + "/v1/job/traefik", timeout=10).json()
        volumes = [requests.get(server.address + "/v1/volume/host/" + v["ID"], timeout=10).json()
                   for v in requests.get(server.address + "/v1/volumes?type=host", timeout=10).json()]
        rc, second = run_role(work / "second", server.address, base_vars(**data))
        assert rc == 0, failure(second)
        registrations = [r for r in server.requests if r["method"] in ("PUT", "POST")
                         and r["path"] in ("/v1/jobs", "/v1/job/traefik")]
        yield {"job": job, "volumes": volumes, "data": work / "data", "first": first, "second": second,
               "parses": parses, "registrations": registrations}


def test_job_is_parsed_by_nomad_and_registered_once(submitted):
    assert submitted["parses"] >= 1
    assert _submit_result(submitted["first"])["changed"] is True
    assert _submit_result(submitted["second"])["changed"] is False
    assert len(submitted["registrations"]) == 1


def test_acme_storage_volume_is_made_and_registered_by_the_role(submitted):
    """The role does not assume the volume: the app role makes the directory and registers it with Nomad."""
    storage = submitted["data"] / "traefik"
    assert storage.is_dir() and oct(storage.stat().st_mode & 0o777) == "0o700"
    (volume,) = [v for v in submitted["volumes"] if v["Name"] == "traefik-data"]
    assert volume["HostPath"] == str(storage)
    made = [r for n, r in task_results(submitted["second"]) if "host volumes" in n.lower() or "volumes of" in n]
    assert made and not any(r.get("changed") for r in made), made


def test_job_validates_against_the_nomad_job_schema(submitted):
    # The job as read back from the server: its canonical fields are checked against the schema only.
    assert_valid_job(submitted["job"], strict=False)


def test_job_shape(submitted):
    job = submitted["job"]
    assert job["ID"] == "traefik" and job["Type"] == "service"
    assert {"LTarget": "${meta.ingress}", "RTarget": "true", "Operand": "="}.items() <= job["Constraints"][0].items()
    group = job["TaskGroups"][0]
    reserved = {p["Label"]: p for p in group["Networks"][0]["ReservedPorts"]}
    assert (reserved["http"]["Value"], reserved["https"]["Value"]) == (80, 443)
    assert {p["Label"] for p in group["Networks"][0]["DynamicPorts"]} == {"ping"}
    assert group["Volumes"]["acme"]["Type"] == "host" and group["Volumes"]["acme"]["Source"] == "traefik-data"
    task = group["Tasks"][0]
    assert task["Driver"] == "docker"
    assert task["Config"]["image"] == "traefik:v3.7.15"
    assert task["Config"]["network_mode"] == "host"
    assert task["Vault"]["Role"] == "traefik"
    assert [m["Destination"] for m in task["VolumeMounts"]] == ["/data"]
    templates = {t["DestPath"]: t for t in task["Templates"]}
    assert set(templates) == {"secrets/vault.env", "local/traefik.yml", "local/dynamic/traefik.yml",
                              "secrets/auth.htpasswd"}
    env = templates["secrets/vault.env"]
    assert env["Envvars"] is True
    assert 'with secret "kv/data/traefik"' in env["EmbeddedTmpl"]
    assert 'DO_AUTH_TOKEN={{ index .Data.data "do_auth_token" | toJSON }}' in env["EmbeddedTmpl"]
    static = templates["local/traefik.yml"]
    assert (static["LeftDelim"], static["RightDelim"]) == ("[[", "]]")
    config = yaml.safe_load(static["EmbeddedTmpl"])
    assert config["global"] == {"checkNewVersion": False, "sendAnonymousUsage": False}
    assert config["api"] == {"dashboard": True, "insecure": False}
    catalog = config["providers"]["consulCatalog"]
    assert catalog["exposedByDefault"] is False
    assert catalog["defaultRule"] == "Host(`{{ .Name }}.%s`)" % DOMAIN
    acme = config["certificatesResolvers"]["letsencrypt"]["acme"]
    assert acme["caServer"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert acme["storage"] == "/data/acme.json"
    assert acme["dnsChallenge"]["provider"] == "digitalocean"
    assert acme["dnsChallenge"]["resolvers"] == ["1.1.1.1:53", "9.9.9.9:53"]
    assert config["entryPoints"]["web"]["http"]["redirections"]["entryPoint"]["to"] == "websecure"
    assert config["metrics"] == {"prometheus": {"entryPoint": "ping"}}
    services = task["Services"]
    assert [s["Name"] for s in services] == ["traefik"]
    assert services[0]["PortLabel"] == "ping"
    assert services[0]["Tags"] == ["metrics"] and services[0]["Meta"] == {"metrics_path": "/metrics"}
    assert services[0]["Checks"][0]["Path"] == "/ping" and services[0]["Checks"][0]["PortLabel"] == "ping"
    dynamic = yaml.safe_load(templates["local/dynamic/traefik.yml"]["EmbeddedTmpl"])
    assert dynamic["http"]["routers"]["dashboard"]["middlewares"] == ["auth"]
    assert dynamic["http"]["middlewares"]["auth"]["basicAuth"]["usersFile"] == \
        '[[ env "NOMAD_SECRETS_DIR" ]]/auth.htpasswd'
    assert templates["secrets/auth.htpasswd"]["Perms"] == "0400"


def test_check_mode_registers_nothing(tmp_path):
    with nomad_sim() as server:
        rc, out = run_role(tmp_path, server.address, base_vars(), check=True)
        assert rc == 0, failure(out)
        assert _submit_result(out)["changed"] is True
        assert requests.get(server.address + "/v1/job/traefik", timeout=10).status_code == 404


def test_other_lego_provider_and_no_consul_token(tmp_path):
    """Another DNS provider is variables only; a Consul without ACLs gets no token line."""
    with nomad_sim() as server:
        rc, out = run_role(tmp_path, server.address, base_vars(
            traefik_acme_dns_provider="cloudflare",
            traefik_acme_dns_provider_env={"CF_DNS_API_TOKEN": "cloudflare_token"},
            traefik_acme_sans=[DOMAIN], traefik_consul_token_field="", traefik_dashboard_enabled=False,
            # HCL template sequences in the configuration reach Traefik literally (escaped in the heredoc).
            traefik_static_config_extra={"accessLog": {"filePath": "/alloc/logs/${x}%{y}.log"},
                                         "log": {"level": "DEBUG"}}))
        assert rc == 0, failure(out)
        job = requests.get(server.address + "/v1/job/traefik", timeout=10).json()
    task = job["TaskGroups"][0]["Tasks"][0]
    templates = {t["DestPath"]: t["EmbeddedTmpl"] for t in task["Templates"]}
    assert 'CF_DNS_API_TOKEN={{ index .Data.data "cloudflare_token" | toJSON }}' in templates["secrets/vault.env"]
    static = yaml.safe_load(templates["local/traefik.yml"])
    assert static["certificatesResolvers"]["letsencrypt"]["acme"]["dnsChallenge"]["provider"] == "cloudflare"
    assert "token" not in static["providers"]["consulCatalog"]["endpoint"]
    assert static["api"]["dashboard"] is False
    assert static["accessLog"] == {"filePath": "/alloc/logs/${x}%{y}.log"}
    assert static["log"] == {"level": "DEBUG"}
    dynamic = yaml.safe_load(templates["local/dynamic/traefik.yml"])
    # No dashboard, but the auth middleware other services may name stays.
    assert "routers" not in dynamic["http"] and "auth" in dynamic["http"]["middlewares"]
    assert dynamic["tls"]["stores"]["default"]["defaultGeneratedCert"]["domain"] == {
        "main": "*.%s" % DOMAIN, "sans": [DOMAIN]}
    assert "secrets/auth.htpasswd" in templates


@pytest.mark.parametrize("variables, field", [
    ({"traefik_domain": "Not A Domain"}, "traefik_domain"),
    ({"traefik_http_port": 70000}, "traefik_http_port"),
    ({"traefik_acme_resolvers": ["1.1.1.1"]}, "traefik_acme_resolvers"),
    ({"traefik_acme_ca_server": "http://acme.example.test/dir"}, "traefik_acme_ca_server"),
    ({"traefik_acme_dns_provider_env": {"DO AUTH": "do_auth_token"}}, "traefik_acme_dns_provider_env"),
    ({"traefik_log_level": "LOUD"}, "traefik_log_level"),
    ({"traefik_https_port": "https"}, "traefik_https_port"),
], ids=["domain", "port-range", "resolver", "ca-server", "provider-env", "log-level", "port-type"])
def test_bad_input_fails_naming_the_field_before_any_change(tmp_path, variables, field):
    with nomad_sim() as server:
        rc, out = run_role(tmp_path, server.address, base_vars(**variables))
        assert rc != 0
        message = failure(out)
        assert field in message, message
        assert server.count() == 0, "nothing may reach Nomad: %s" % json.dumps(server.requests)[:500]
