"""consul_acl's pure helpers: Consul's policy hash, the token comparison and the token bodies."""

from __future__ import annotations

from ansible_collections.selfhost.homelab.plugins.module_utils._consul_acl import (
    policy_hash,
    token_body,
    token_differences,
    validate,
)


def test_policy_hash_matches_what_consul_1_8_7_returned():
    # Recorded from the real agent: PUT /v1/acl/policy answers and GET /v1/acl/policies stubs.
    assert policy_hash("p1", "d", 'node_prefix "" { policy = "read" }\n', None) == \
        "F/o4zxA7I9GJ4yetx0xVXoMTkIxliSicXkm+hBWgUuQ="
    assert policy_hash("p2", "", 'key "x" { policy = "read" }', ["dc1"]) == \
        "87sS9vITX6OHDhqq9MJAhlPZc8yFstiUU3wPKvIjdkU="


def test_policy_hash_changes_with_the_rules_and_the_description():
    base = policy_hash("p", "d", "r", None)
    assert policy_hash("p", "d", "r ", None) != base
    assert policy_hash("p", "e", "r", None) != base
    assert policy_hash("p", "d", "r", ["dc1"]) != base


WANT = {"name": "t", "secret_id": "706c79be-e568-4410-87ef-2c84c6a4399d", "policies": ["a"], "description": None}
HAVE = {"AccessorID": "9cb408b1-1e42-4255-da41-da57368a49d2", "Description": "kept",
        "Policies": [{"ID": "1", "Name": "a"}, {"ID": "2", "Name": "extra"}], "Local": False}


def test_an_absent_token_differs_in_everything_given():
    assert token_differences(WANT, None) == ["policies", "secret_id"]
    assert token_differences(dict(WANT, description="x"), None) == ["description", "policies", "secret_id"]


def test_extra_policies_and_an_unspecified_description_do_not_differ():
    assert token_differences(WANT, HAVE) == []
    assert token_differences(dict(WANT, description="kept"), HAVE) == []
    assert token_differences(dict(WANT, description="other"), HAVE) == ["description"]
    assert token_differences(dict(WANT, policies=["b"]), HAVE) == ["policies"]
    assert token_differences(WANT, dict(HAVE, Policies=None)) == ["policies"]


def test_an_update_adds_policies_and_keeps_the_rest():
    body = token_body(dict(WANT, policies=["b", "a"]), HAVE)
    assert body == {"AccessorID": HAVE["AccessorID"], "SecretID": WANT["secret_id"], "Description": "kept",
                    "Policies": [{"Name": "a"}, {"Name": "extra"}, {"Name": "b"}], "Local": False}


def test_a_new_token_is_described_by_its_name_unless_given():
    assert token_body(WANT, None)["Description"] == "t"
    assert token_body(dict(WANT, description="d"), None) == {
        "SecretID": WANT["secret_id"], "Description": "d", "Policies": [{"Name": "a"}]}


def test_validate_normalises():
    policies, tokens = validate({"policies": [{"name": "a", "rules": "", "description": None}],
                                 "tokens": [{"name": "t", "secret_id": WANT["secret_id"], "policies": ["a"]}]})
    assert policies == [{"name": "a", "rules": "", "description": None}]
    assert tokens == [dict(WANT)]


def test_policy_names_compare_regardless_of_case():
    assert token_differences(dict(WANT, policies=["A", "Extra"]), HAVE) == []
    assert token_body(dict(WANT, policies=["EXTRA", "b"]), HAVE)["Policies"] == [
        {"Name": "a"}, {"Name": "extra"}, {"Name": "b"}]
