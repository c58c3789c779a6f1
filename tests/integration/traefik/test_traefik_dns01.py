"""Certificates, for real: a DNS-01 round trip on loopback.

traefik, with the role's static configuration (its certificate resolver, the
DigitalOcean provider, the resolvers and propagation settings), asks Pebble for
the wildcard certificate. lego's DigitalOcean provider is pointed (DO_API_URL)
at a fake DigitalOcean API that publishes the TXT record in a small
authoritative DNS server on loopback; Pebble validates against that server and
the propagation check asks it (it is the role's resolver). The DigitalOcean
token reaches Traefik through the job's Vault template as DO_AUTH_TOKEN.
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID

from .conftest import DOMAIN, Pebble, Task, base_vars, deploy, free_ports, https_get, wait_for
from .fakedns import DNSServer, FakeDigitalOcean, Zone

DO_TOKEN = "dop_v1_" + "5e" * 32


@pytest.fixture(scope="module")
def issued(tmp_path_factory, consul):
    work = tmp_path_factory.mktemp("traefik-dns01")
    zone = Zone(DOMAIN + ".")
    dns = DNSServer(zone).start()
    digitalocean = FakeDigitalOcean(zone, DO_TOKEN).start()
    pebble = Pebble(work, dns.address)
    traefik = None
    try:
        acme_dir = work / "acme"
        acme_dir.mkdir()
        job = deploy(work / "role", base_vars(
            traefik_consul_address=consul.address,
            traefik_acme_ca_server=pebble.directory,
            traefik_acme_resolvers=[dns.address],
            # lego asks the NS host names' addresses from the system resolver: a query out of the test.
            traefik_acme_propagation_disable_ans_checks=True,
            traefik_acme_storage_dir=str(acme_dir),
            traefik_dashboard_enabled=False))
        ports = free_ports("http", "https", "ping")
        task = Task(job, work / "task", ports, {"do_auth_token": DO_TOKEN, "consul_token": consul.traefik_token})
        traefik = task.start_traefik({"LEGO_CA_CERTIFICATES": pebble.pki["ca"], "DO_API_URL": digitalocean.url,
                                      "DO_POLLING_INTERVAL": "1", "DO_PROPAGATION_TIMEOUT": "60"})

        def wildcard_served():
            assert traefik.alive(), traefik.output()
            der = https_get(ports["https"], "photos.%s" % DOMAIN)[3]
            cert = x509.load_der_x509_certificate(der)
            names = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
            return cert if "*.%s" % DOMAIN in names.get_values_for_type(x509.DNSName) else None

        try:
            cert = wait_for(wildcard_served, 150, "Traefik to serve the wildcard certificate", interval=1)
        except AssertionError as exc:
            raise AssertionError("%s\n--- traefik log:\n%s\n--- pebble log:\n%s" % (
                exc, traefik.output()[-6000:], pebble.proc.output()[-3000:])) from None
        yield {"cert": cert, "pebble": pebble, "zone": zone, "digitalocean": digitalocean, "task": task,
               "acme_dir": acme_dir, "ports": ports, "traefik": traefik}
    finally:
        if traefik is not None:
            traefik.stop()
        pebble.stop()
        digitalocean.stop()
        dns.stop()


def test_wildcard_certificate_issued_by_pebble(issued):
    cert = issued["cert"]
    names = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert names.get_values_for_type(x509.DNSName) == ["*.%s" % DOMAIN]
    intermediate = x509.load_pem_x509_certificate(issued["pebble"].intermediate_pem())
    assert cert.issuer == intermediate.subject
    key = intermediate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    else:
        from cryptography.hazmat.primitives.asymmetric import padding

        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)


def test_the_same_certificate_for_every_subdomain(issued):
    for host in ("cloud", "plex", "torrents", "nosuch"):
        der = https_get(issued["ports"]["https"], "%s.%s" % (host, DOMAIN))[3]
        assert x509.load_der_x509_certificate(der) == issued["cert"]


def test_txt_record_went_through_the_digitalocean_api_and_was_cleaned_up(issued):
    log = issued["digitalocean"].log
    assert ("POST", "/v2/domains/%s/records" % DOMAIN, 201) in log
    assert any(m == "DELETE" and s == 204 for m, _p, s in log)
    assert not any(s == 401 for _m, _p, s in log), "the token from Vault must reach lego as DO_AUTH_TOKEN"
    assert issued["zone"].records == {}
    assert ("_acme-challenge.%s." % DOMAIN, "TXT") in issued["zone"].queries


def test_account_and_certificate_are_kept_in_the_acme_storage(issued):
    storage = json.loads((issued["acme_dir"] / "acme.json").read_text())
    resolver = storage["letsencrypt"]
    assert resolver["Account"]["Registration"]["uri"].startswith("https://127.0.0.1:")
    assert [c["domain"]["main"] for c in resolver["Certificates"]] == ["*.%s" % DOMAIN]


def test_token_reached_traefik_only_through_the_vault_template(issued):
    task = issued["task"]
    assert task.env["DO_AUTH_TOKEN"] == DO_TOKEN
    assert set(task.reads) == {"kv/data/traefik"}
    rendered_job = json.dumps(task.job)
    assert DO_TOKEN not in rendered_job
