import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.homelab.plugins.filter.fqdn import FilterModule, fqdn


@pytest.mark.parametrize(
    ("subdomain", "domain", "expected"),
    [
        ("photos", "home.example.org", "photos.home.example.org"),
        ("Photos", "Home.Example.ORG.", "photos.home.example.org"),
        ("files.family", "example.test", "files.family.example.test"),
        ("a-b1", "example.test", "a-b1.example.test"),
        ("@", "example.test", "example.test"),
        ("*", "example.test", "*.example.test"),
        ("x" * 63, "example.test", "x" * 63 + ".example.test"),
    ],
)
def test_valid_names(subdomain, domain, expected):
    assert fqdn(subdomain, domain) == expected


@pytest.mark.parametrize(
    ("subdomain", "domain", "field"),
    [
        ("photo_prism", "example.test", "subdomain"),
        ("-photos", "example.test", "subdomain"),
        ("photos-", "example.test", "subdomain"),
        ("", "example.test", "subdomain"),
        ("a..b", "example.test", "subdomain"),
        ("x" * 64, "example.test", "subdomain"),
        ("ph*tos", "example.test", "subdomain"),
        ("photos", "localhost", "domain"),
        ("photos", "exa mple.test", "domain"),
        ("photos", "", "domain"),
        (5, "example.test", "subdomain"),
        ("photos", None, "domain"),
    ],
)
def test_bad_names_name_the_field(subdomain, domain, field):
    with pytest.raises(AnsibleFilterError, match="fqdn: %s" % field):
        fqdn(subdomain, domain)


def test_too_long_name_is_rejected():
    domain = ".".join(["d" * 60] * 4)  # 243 characters
    with pytest.raises(AnsibleFilterError, match="at most 253"):
        fqdn("s" * 20, domain)


def test_filter_is_registered():
    assert FilterModule().filters()["fqdn"] is fqdn
