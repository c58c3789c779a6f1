"""The simulator's pure parts: Shamir sharing and ACL policy matching."""

from __future__ import annotations

import os
import random

import pytest

from tests.simulators.vault import policy, shamir


@pytest.mark.parametrize("shares,threshold", [(2, 2), (3, 2), (5, 3), (10, 10)])
def test_any_threshold_shares_rebuild_the_secret_and_fewer_do_not(shares, threshold):
    secret = os.urandom(32)
    parts = shamir.split(secret, shares, threshold)
    assert len({p[-1] for p in parts}) == shares
    for _round in range(5):
        assert shamir.combine(random.sample(parts, threshold)) == secret
    if threshold > 2:
        assert shamir.combine(parts[: threshold - 1]) != secret


def test_shamir_rejects_bad_input():
    with pytest.raises(ValueError):
        shamir.split(b"x", 3, 1)
    with pytest.raises(ValueError):
        shamir.combine([b"ab"])
    part = shamir.split(b"secret", 3, 2)[0]
    with pytest.raises(ValueError):
        shamir.combine([part, part])


RULES = policy.parse('''
path "secret/*" { capabilities = ["read", "list"] }
path "secret/data/+/team" { capabilities = ["update"] }
path "secret/data/app" { capabilities = ["create", "read"] }
path "secret/data/app*" { capabilities = ["delete"] }
path "secret/data/locked" { capabilities = ["deny"] }
path "+/data/x" { capabilities = ["patch"] }
path "legacy/*" { policy = "write" }
''')


@pytest.mark.parametrize("path,caps", [
    ("secret/data/app", {"create", "read"}),          # exact match wins
    ("secret/data/apple", {"delete"}),                # longer glob beats shorter glob
    ("secret/data/a/team", {"update"}),               # "+" is one segment; later wildcard wins
    ("secret/data/a/b/team", {"read", "list"}),       # "+" never spans two segments
    ("secret/data/locked", {"deny"}),
    ("other/data/x", {"patch"}),
    ("secret/data/x", {"read", "list"}),              # later wildcard ("*" at 7) beats "+" at 0
    ("legacy/a", {"create", "read", "update", "patch", "delete", "list"}),
    ("nothing/here", set()),
])
def test_acl_picks_the_most_specific_rule(path, caps):
    assert policy.ACL([RULES]).capabilities(path) == caps


def test_acl_merges_policies_and_deny_wins():
    a = policy.parse('path "kv/data/x" { capabilities = ["read"] }')
    b = policy.parse('path "kv/data/x" { capabilities = ["update"] }')
    c = policy.parse('path "kv/data/x" { capabilities = ["deny"] }')
    assert policy.ACL([a, b]).capabilities("kv/data/x") == {"read", "update"}
    assert not policy.ACL([a, b, c]).allows("kv/data/x", "read")
    assert policy.ACL([], root=True).allows("anything", "sudo")


@pytest.mark.parametrize("text,message", [
    ('path "x" { capabilities = ["reed"] }', 'invalid capability "reed"'),
    ('path "x" { policy = "all" }', 'invalid policy "all"'),
    ('path "x" {', "failed to parse policy"),
    ('paths "x" { capabilities = ["read"] }', "invalid key"),
])
def test_policy_parse_errors(text, message):
    with pytest.raises(policy.PolicyError, match=message):
        policy.parse(text)


def test_json_policy():
    rules = policy.parse('{"path": {"kv/data/a": {"capabilities": ["read"]}}}')
    assert rules == {"kv/data/a": {"read"}}
