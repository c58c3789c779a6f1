import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.homelab.plugins.filter.dnscrypt_cloaking import (
    FilterModule,
    dnscrypt_cloaking,
)


def test_wildcard_and_bare_domain_point_at_the_ingress():
    assert dnscrypt_cloaking("lgian.com", ["192.168.1.3"]) == (
        "*.lgian.com 192.168.1.3\nlgian.com 192.168.1.3\n"
    )


def test_several_addresses_and_ipv6_and_normalisation():
    text = dnscrypt_cloaking("Home.Example.ORG.", ["192.168.1.3", "fd00::0:3"])
    assert text.splitlines() == [
        "*.home.example.org 192.168.1.3",
        "*.home.example.org fd00::3",
        "home.example.org 192.168.1.3",
        "home.example.org fd00::3",
    ]


def test_a_single_address_string_is_accepted():
    assert dnscrypt_cloaking("example.test", "10.0.0.1").startswith("*.example.test 10.0.0.1\n")


def test_extra_entries_addresses_targets_and_duplicates():
    text = dnscrypt_cloaking(
        "example.test",
        ["10.0.0.1"],
        [
            {"name": "NAS.lan", "address": "192.168.1.5"},
            {"name": "*.iot.lan", "address": ["192.168.2.1", "192.168.2.2"]},
            {"name": "www.example.org", "target": "example.test"},
            {"name": "photos.example.test", "address": "10.0.0.1"},
            {"name": "nas.lan", "address": "192.168.1.5"},
        ],
    )
    assert text.splitlines() == [
        "*.example.test 10.0.0.1",
        "example.test 10.0.0.1",
        "nas.lan 192.168.1.5",
        "*.iot.lan 192.168.2.1",
        "*.iot.lan 192.168.2.2",
        "www.example.org example.test",
        "photos.example.test 10.0.0.1",
    ]


@pytest.mark.parametrize(
    ("domain", "addresses", "extra", "message"),
    [
        ("example.test", ["192.168.1.300"], None, r"addresses\[0\] '192.168.1.300' is not a valid"),
        ("example.test", ["10.0.0.1", "ingress"], None, r"addresses\[1\] 'ingress' is not a valid"),
        ("example.test", [5], None, r"addresses\[0\] must be an IP address string"),
        ("example.test", [], None, "addresses must be a non-empty list"),
        ("example.test", None, None, "addresses must be a non-empty list"),
        ("bad_domain.test", ["10.0.0.1"], None, "fqdn: domain"),
        ("localhost", ["10.0.0.1"], None, "fqdn: domain"),
        ("example.test", ["10.0.0.1"], [{"name": "bad name.lan", "address": "10.0.0.2"}],
         r"extra\[0\].name 'bad name.lan' is not a valid DNS name"),
        ("example.test", ["10.0.0.1"], [{"name": "ok.lan", "address": "10.0.0.256"}],
         r"extra\[0\].address\[0\] '10.0.0.256' is not a valid"),
        ("example.test", ["10.0.0.1"], [{"name": "ok.lan"}], r"extra\[0\] needs exactly one of address and target"),
        ("example.test", ["10.0.0.1"], [{"name": "ok.lan", "address": "10.0.0.2", "target": "x.lan"}],
         r"extra\[0\] needs exactly one"),
        ("example.test", ["10.0.0.1"], [{"name": "ok.lan", "target": "*.x.lan"}], r"extra\[0\].target .* wildcard"),
        ("example.test", ["10.0.0.1"], [{"name": "ok.lan", "address": "10.0.0.2", "ttl": 5}],
         r"extra\[0\] has unknown keys ttl"),
        ("example.test", ["10.0.0.1"], ["ok.lan 10.0.0.2"], r"extra\[0\] must be a dict"),
        ("example.test", ["10.0.0.1"], [{"name": "ok.lan", "address": []}], r"extra\[0\].address must be"),
    ],
)
def test_bad_input_names_the_field(domain, addresses, extra, message):
    with pytest.raises(AnsibleFilterError, match=message):
        dnscrypt_cloaking(domain, addresses, extra)


def test_filter_is_registered():
    assert FilterModule().filters()["dnscrypt_cloaking"] is dnscrypt_cloaking
