"""selfhost.homelab.consul_acl end to end: ansible-playbook -> open_url -> a real Consul agent with ACLs on.

Policies and tokens go through check -> create -> again (not changed, reads only) -> change; what
Consul holds is checked over its HTTP API with the management token, not through the module, and a
created token is used with its own SecretID. Every test uses names of its own, so tests never see
each other's objects on the shared agent.
"""

from __future__ import annotations

import time
import uuid

import pytest


def rules_for(service):
    return 'service "%s" {\n  policy = "write"\n}\n' % service


def acl(**options):
    return {"selfhost.homelab.consul_acl": options}


def task(name, body, **extra):
    return {"name": name, **body, **extra}


@pytest.fixture
def names():
    prefix = "it-acl-%s" % uuid.uuid4().hex[:6]
    return [prefix + "-a", prefix + "-b"]


def policy(consul, name):
    status, body = consul.api("GET", "/acl/policy/name/%s" % name)
    return body if status == 200 else None


def token_self(consul, secret):
    status, body = consul.api("GET", "/acl/token/self", token=secret)
    return body if status == 200 else None


def writes(consul):
    """Consul's raft index: it moves with every write, and with nothing else on an idle dev agent."""
    status, body = consul.api("GET", "/acl/policies")
    assert status == 200, body
    return max(p["ModifyIndex"] for p in body)


def test_check_create_again_change(consul, names, play):
    secrets = [str(uuid.uuid4()), str(uuid.uuid4())]
    pols = [{"name": n, "rules": rules_for(n), "description": "it: %s" % n} for n in names]
    toks = [{"name": n, "secret_id": s, "policies": [n]} for n, s in zip(names, secrets, strict=True)]
    changed_pols = [pols[0], {**pols[1], "rules": rules_for(names[1] + "-v2")}]
    started = time.monotonic()
    res = play([
        task("check create", acl(policies=pols, tokens=toks), check_mode=True),
        task("create", acl(policies=pols, tokens=toks)),
        task("create again", acl(policies=pols, tokens=toks)),
    ])
    assert res.rc == 0, res.stdout + res.stderr

    check = res["check create"]
    assert check["changed"] is True
    assert [(p["created"], p["changed"]) for p in check["policies"]] == [(True, True)] * 2
    assert [(t["created"], t["changed"]) for t in check["tokens"]] == [(True, True)] * 2
    assert check["created_tokens"] == names

    create = res["create"]
    assert create["changed"] is True
    assert [p["name"] for p in create["policies"]] == names and all(p["created"] for p in create["policies"])
    assert create["created_tokens"] == names
    assert all(t["accessor_id"] for t in create["tokens"])
    for name, secret in zip(names, secrets, strict=True):
        held = policy(consul, name)
        assert held["Rules"] == rules_for(name) and held["Description"] == "it: %s" % name
        # The token exists with the given SecretID and its policy: it resolves with that secret.
        own = token_self(consul, secret)
        assert own is not None, "token %s does not resolve with its SecretID" % name
        assert [p["Name"] for p in own["Policies"]] == [name]
        assert own["Description"] == name

    again = res["create again"]
    assert again["changed"] is False and again["created_tokens"] == []
    assert not any(p["changed"] for p in again["policies"]) and not any(t["changed"] for t in again["tokens"])
    # Reads only: one list of the policies (their hashes match), one list of the tokens, and, since
    # Consul 1.8 lists no SecretIDs, one token/self per token. Consul 1.9+ needs 2 in all.
    assert again["requests"] == 2 + len(toks)

    res = play([
        task("change one policy's rules", acl(policies=changed_pols, tokens=toks)),
        task("change again", acl(policies=changed_pols, tokens=toks)),
    ])
    assert res.rc == 0, res.stdout + res.stderr
    assert time.monotonic() - started < 120
    change = res["change one policy's rules"]
    assert change["changed"] is True
    assert [p["changed"] for p in change["policies"]] == [False, True]
    assert change["policies"][1]["differences"] == ["rules"] and not change["policies"][1]["created"]
    assert not any(t["changed"] for t in change["tokens"])
    # The hash of the changed policy no longer matches: one more read for it, then one write.
    assert change["requests"] == 2 + len(toks) + 1 + 1
    assert policy(consul, names[1])["Rules"] == rules_for(names[1] + "-v2")
    assert policy(consul, names[1])["Description"] == "it: %s" % names[1]
    assert res["change again"]["changed"] is False


def test_token_missing_its_policy_gets_it_back_and_keeps_the_others(consul, names, play):
    secret = str(uuid.uuid4())
    pols = [{"name": n, "rules": rules_for(n)} for n in names]
    status, made = consul.api("PUT", "/acl/policy", {"Name": names[0], "Rules": rules_for(names[0])})
    assert status == 200, made
    status, made = consul.api("PUT", "/acl/policy", {"Name": names[1], "Rules": rules_for(names[1])})
    assert status == 200, made
    # A token made by hand with the SecretID, holding only the other policy and its own description.
    status, token = consul.api("PUT", "/acl/token", {"SecretID": secret, "Description": "by hand",
                                                     "Policies": [{"Name": names[1]}]})
    assert status == 200, token
    wanted = [{"name": "t", "secret_id": secret, "policies": [names[0]]}]
    res = play([
        task("give the policy back", acl(policies=pols, tokens=wanted)),
        task("again", acl(policies=pols, tokens=wanted)),
        task("set a description", acl(tokens=[{"name": "t", "secret_id": secret, "policies": [names[0]],
                                               "description": "managed"}])),
    ], diff=True)
    assert res.rc == 0, res.stdout + res.stderr
    first = res["give the policy back"]
    assert [p["changed"] for p in first["policies"]] == [False, False]
    assert first["tokens"][0] == {"name": "t", "changed": True, "created": False, "differences": ["policies"],
                                  "accessor_id": token["AccessorID"]}
    assert first["created_tokens"] == []
    assert res["again"]["changed"] is False
    assert res["set a description"]["tokens"][0]["differences"] == ["description"]
    held = token_self(consul, secret)
    assert held["AccessorID"] == token["AccessorID"]
    assert sorted(p["Name"] for p in held["Policies"]) == sorted(names)
    assert held["Description"] == "managed"
    # The diff shows the policies, never the secret.
    diff = res["give the policy back"]["diff"]
    assert diff == [{"before_header": "acl/token (t)", "after_header": "acl/token (t)",
                     "before": {"accessor_id": token["AccessorID"], "description": "by hand",
                                "policies": [names[1]]},
                     "after": {"accessor_id": token["AccessorID"], "description": "by hand",
                               "policies": [names[1], names[0]]}}]
    assert secret not in res.stdout


def test_check_mode_writes_nothing_and_diff_shows_rules(consul, names, play):
    status, made = consul.api("PUT", "/acl/policy", {"Name": names[0], "Description": "d",
                                                     "Rules": rules_for(names[0])})
    assert status == 200, made
    secret = str(uuid.uuid4())
    pols = [{"name": names[0], "rules": rules_for("other")}, {"name": names[1], "rules": rules_for(names[1])}]
    toks = [{"name": "new", "secret_id": secret, "policies": [names[1]]}]
    index = writes(consul)
    res = play([task("plan", acl(policies=pols, tokens=toks))], check=True, diff=True)
    assert res.rc == 0, res.stdout + res.stderr
    plan = res["plan"]
    assert plan["changed"] is True and plan["created_tokens"] == ["new"]
    assert writes(consul) == index, "check mode wrote to Consul"
    assert policy(consul, names[0])["Rules"] == rules_for(names[0])
    assert policy(consul, names[1]) is None and token_self(consul, secret) is None
    diff = plan["diff"]
    assert diff[0] == {"before_header": "acl/policy/%s" % names[0], "after_header": "acl/policy/%s" % names[0],
                       "before": {"description": "d", "rules": rules_for(names[0])},
                       "after": {"description": "d", "rules": rules_for("other")}}
    assert diff[1]["before_header"] == "acl/policy/%s (absent)" % names[1] and diff[1]["before"] == {}
    assert diff[2]["before_header"] == "acl/token (new) (absent)"
    assert diff[2]["after"] == {"accessor_id": "(new)", "description": "new", "policies": [names[1]]}
    assert secret not in res.stdout


@pytest.mark.parametrize("options, message", [
    ({"policies": [{"name": "ok", "rules": ""}, {"name": "bad name", "rules": "x"}]},
     "policies[1].name 'bad name' must be 1 to 128 letters"),
    ({"policies": [{"name": "a"}]}, "policies[0].rules is required"),
    ({"tokens": [{"name": "t", "secret_id": "not-a-uuid", "policies": []}]},
     "tokens[0].secret_id must be a UUID"),
    ({"tokens": [{"name": "t", "secret_id": "6a1253d2-1785-24fd-91c2-f8e78c745511"}]},
     "tokens[0].policies is required"),
])
def test_bad_input_fails_before_any_request(consul, play, options, message):
    # An address nothing listens on: a request would fail with "cannot reach", not with the message.
    res = play([task("bad", acl(**options))], defaults={"url": "http://127.0.0.1:9", "token": consul.master})
    assert res.rc != 0
    result = res["bad"]
    assert result["failed"] is True and result["msg"].startswith(message), result["msg"]
    assert "not-a-uuid" not in result["msg"]


def test_a_token_naming_an_unknown_policy_fails_before_any_write(consul, names, play):
    index = writes(consul)
    res = play([task("unknown policy", acl(policies=[{"name": names[0], "rules": rules_for(names[0])}],
                                           tokens=[{"name": "t", "secret_id": str(uuid.uuid4()),
                                                    "policies": [names[1]]}]))])
    assert res.rc != 0
    assert res["unknown policy"]["msg"] == "tokens[0].policies: no policy named %s in Consul nor in policies" % names[1]
    assert writes(consul) == index and policy(consul, names[0]) is None
