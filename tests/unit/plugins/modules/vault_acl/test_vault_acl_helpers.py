"""Pure helpers of vault_acl: the duration parser, the role comparison, the diff view, input validation."""

from __future__ import annotations

import pytest
from ansible_collections.selfhost.homelab.plugins.module_utils._vault import VaultError
from ansible_collections.selfhost.homelab.plugins.module_utils._vault_acl import (
    DURATION_FIELDS,
    normalize,
    parse_duration,
    role_differences,
    role_view,
    same,
    validate,
)


@pytest.mark.parametrize("value,seconds", [
    (0, 0), (90, 90), (1.9, 1), ("0", 0), ("3600", 3600), ("90s", 90), ("30m", 1800), ("1h", 3600),
    ("1h30m", 5400), ("1.5h", 5400), ("2h45m30s", 9930), ("500ms", 0), ("1500ms", 1), ("2d", 172800),
    ("0.5d", 43200), (" 30m ", 1800), ("1m30.5s", 90), ("3000000000ns", 3), ("2000000us", 2),
])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "  ", "abc", "1x", "1d12h", "h", "30 m", "-5m", "1h-30m", "d", True, None, -1])
def test_parse_duration_refuses_what_vault_refuses(value):
    with pytest.raises(VaultError) as exc:
        parse_duration(value, "jwt_roles[0].role.token_ttl")
    assert str(exc.value).startswith("jwt_roles[0].role.token_ttl: ")


def test_duration_fields_are_the_documented_ones():
    assert DURATION_FIELDS == {"token_period", "token_ttl", "token_max_ttl", "token_explicit_max_ttl", "ttl",
                               "max_ttl", "period", "expiration_leeway", "not_before_leeway", "clock_skew_leeway"}


@pytest.mark.parametrize("key,value,stored", [
    ("token_period", "30m", 1800),
    ("token_period", 1800, 1800),
    ("ttl", "", ""),
    ("token_policies", "a, b,,c", ["a", "b", "c"]),
    ("token_policies", ["a"], ["a"]),
    ("bound_audiences", "vault.io", ["vault.io"]),
    ("user_claim", "a,b", "a,b"),  # not a list field: kept as given
    ("bound_claims", {"k": "v"}, {"k": "v"}),
])
def test_normalize(key, value, stored):
    assert normalize(key, value) == stored


VAULT_ROLE = {"token_period": 1800, "token_ttl": 0, "token_policies": ["web"], "bound_audiences": ["vault.io"],
              "bound_claims": {"nomad_job_id": "web"}, "claim_mappings": None, "user_claim": "/nomad_job_id",
              "user_claim_json_pointer": True, "token_type": "service"}


@pytest.mark.parametrize("role,differences", [
    ({"token_period": "30m"}, []),
    ({"token_period": "1h"}, ["token_period"]),
    ({"period": 1800}, []),  # legacy key: compared with token_period when Vault does not echo it
    ({"ttl": "1m"}, ["ttl"]),
    ({"policies": "web"}, []),
    ({"token_policies": ["web", "other"]}, ["token_policies"]),
    ({"token_policies": ["other", "web"], "bound_audiences": "vault.io"}, ["token_policies"]),
    ({"bound_claims": {"nomad_job_id": "web"}}, []),
    ({"bound_claims": {"nomad_job_id": "web", "extra": "1"}}, ["bound_claims"]),
    ({"claim_mappings": {}}, []),  # an empty map given equals Vault's null
    ({"claim_mappings": {"a": "b"}}, ["claim_mappings"]),
    ({"user_claim_json_pointer": False}, ["user_claim_json_pointer"]),
    ({"token_type": "batch", "user_claim": "sub"}, ["token_type", "user_claim"]),
    ({"not_echoed": 1}, ["not_echoed"]),
    ({"token_num_uses": 0}, ["token_num_uses"]),  # not in VAULT_ROLE: not echoed, so it differs
])
def test_role_differences(role, differences):
    assert role_differences(role, VAULT_ROLE) == differences


def test_role_differences_of_an_absent_role_are_every_given_key():
    assert role_differences({"b": 1, "a": 2}, None) == ["a", "b"]


def test_role_view_shows_only_the_given_keys_as_vault_stores_them():
    before, after = role_view({"token_period": "1h", "period": "2m", "not_echoed": "x"}, VAULT_ROLE)
    assert before == {"token_period": 1800, "period": 1800}
    assert after == {"token_period": 3600, "period": 120, "not_echoed": "x"}
    assert role_view({"token_period": "1h"}, None) == ({}, {"token_period": 3600})


def test_same():
    assert same({"a": 1, "b": [1]}, {"b": [1], "a": 1})
    assert same([], None) and same("", None) and same({}, None)
    assert not same([1, 2], [2, 1]) and not same(0, None) and not same(False, None)


def params(**kw):
    return {"policies": kw.get("policies", []), "jwt_roles": kw.get("jwt_roles", [])}


ROLE = {"user_claim": "sub"}


@pytest.mark.parametrize("change,message", [
    ({"policies": ["web"]}, "policies[0] must be a dictionary with name, policy, got str"),
    ({"policies": [{"policy": "x"}]}, "policies[0].name is required"),
    ({"policies": [{"name": "", "policy": "x"}]}, "policies[0].name is required"),
    ({"policies": [{"name": 5, "policy": "x"}]}, "policies[0].name must be a string, got int"),
    ({"policies": [{"name": "a b", "policy": "x"}]}, "policies[0].name 'a b' must not contain spaces"),
    ({"policies": [{"name": "/a", "policy": "x"}]}, "policies[0].name '/a' must not contain spaces"),
    ({"policies": [{"name": "root", "policy": "x"}]}, "policies[0].name: the root policy cannot be changed"),
    ({"policies": [{"name": "a", "policy": "x"}, {"name": "b"}]}, "policies[1].policy is required"),
    ({"policies": [{"name": "a", "policy": "  "}]}, "policies[0].policy is required"),
    ({"policies": [{"name": "a", "policy": ["x"]}]}, "policies[0].policy must be a string (the policy text), got list"),
    ({"policies": [{"name": "a", "policy": "x", "rules": "y"}]}, "policies[0] has unknown key(s) rules"),
    ({"policies": [{"name": "a", "policy": "x"}, {"name": "b", "policy": "x"}, {"name": "A", "policy": "y"}]},
     "policies[2].name 'A' is already given at policies[0]"),
    ({"jwt_roles": [{"name": "r", "role": ROLE}, {"name": "s", "role": ROLE}, {"role": ROLE}]},
     "jwt_roles[2].name is required"),
    ({"jwt_roles": [{"name": "r"}]}, "jwt_roles[0].role is required"),
    ({"jwt_roles": [{"name": "r", "role": "user_claim=sub"}]},
     "jwt_roles[0].role must be a dictionary of role fields, got str"),
    ({"jwt_roles": [{"name": "r", "role": {}}]}, "jwt_roles[0].role must not be empty"),
    ({"jwt_roles": [{"name": "r", "role": ROLE, "mount": ""}]}, "jwt_roles[0].mount '' must be the path"),
    ({"jwt_roles": [{"name": "r", "role": ROLE, "mount": 3}]}, "jwt_roles[0].mount 3 must be the path"),
    ({"jwt_roles": [{"name": "r", "role": {"token_ttl": "soon"}}]},
     "jwt_roles[0].role.token_ttl: 'soon' is not a duration"),
    ({"jwt_roles": [{"name": "r", "role": {"token_ttl": False}}]},
     "jwt_roles[0].role.token_ttl: False is not a duration"),
    ({"jwt_roles": [{"name": "r", "role": {"x": object()}}]}, "jwt_roles[0].role must be JSON-serialisable"),
    ({"jwt_roles": [{"name": "r", "role": ROLE}, {"name": "R", "role": ROLE, "mount": "/jwt/"}]},
     "jwt_roles[1].name 'R' is already given at jwt_roles[0] (mount jwt)"),
])
def test_validate_names_the_field_and_index(change, message):
    with pytest.raises(VaultError) as exc:
        validate(params(**change))
    assert str(exc.value).startswith(message), str(exc.value)
    assert "\n" not in str(exc.value)


def test_validate_normalises():
    policies, roles = validate(params(
        policies=[{"name": "web", "policy": "# web"}],
        jwt_roles=[{"name": "web", "role": ROLE}, {"name": "web", "role": ROLE, "mount": "/jwt-nomad/"},
                   {"name": "api", "role": {"token_ttl": None}, "mount": None}]))
    assert policies == [{"name": "web", "policy": "# web"}]
    assert roles == [{"name": "web", "mount": "jwt", "role": ROLE},
                     {"name": "web", "mount": "jwt-nomad", "role": ROLE},
                     {"name": "api", "mount": "jwt", "role": {"token_ttl": None}}]
    assert validate({"policies": None, "jwt_roles": None}) == ([], [])
