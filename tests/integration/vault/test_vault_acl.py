"""selfhost.homelab.vault_acl end to end: ansible-playbook -> hvac -> HTTP -> Vault (simulated or real).

Policies and JWT roles go through check -> apply -> apply again (not changed, reads only) -> change;
what Vault holds is checked over the HTTP API, not through the module. Each test module mounts its
own JWT auth method and uses policy names of its own, so runs never see each other's objects.
"""

from __future__ import annotations

import json
import uuid

import pytest

ROLE = {
    "role_type": "jwt",
    "bound_audiences": ["vault.io"],
    "user_claim": "/nomad_job_id",
    "user_claim_json_pointer": True,
    "bound_claims": {"nomad_job_id": "web"},
    "claim_mappings": {"nomad_job_id": "nomad_job_id"},
    "token_type": "service",
    "token_policies": ["web"],
    "token_period": "30m",
}


def policy_text(name, path):
    return 'path "kv/data/%s" {\n  capabilities = ["read"]\n}\n' % path if path else "# %s\n" % name


def acl(**options):
    return {"selfhost.homelab.vault_acl": options}


def task(name, body, **extra):
    return {"name": name, **body, **extra}


@pytest.fixture(scope="module")
def jwt_mount(vault):
    name = "it-jwt-%s" % uuid.uuid4().hex[:8]
    vault.ok("POST", "sys/auth/%s" % name, {"type": "jwt"})
    yield name
    vault.api("DELETE", "sys/auth/%s" % name)


@pytest.fixture
def names(vault):
    """Two policy/role names of this test's own, and their policies removed afterwards."""
    prefix = "it-acl-%s" % uuid.uuid4().hex[:6]
    made = [prefix + "-a", prefix + "-b"]
    yield made
    for name in made:
        vault.api("DELETE", "sys/policies/acl/%s" % name)


def policies_of(names, suffix=""):
    return [{"name": n, "policy": policy_text(n, n + suffix)} for n in names]


def roles_of(names, mount, **changes):
    return [{"name": n, "mount": mount, "role": {**ROLE, "bound_claims": {"nomad_job_id": n}, "token_policies": [n],
                                                 **changes}} for n in names]


def test_check_create_idempotent_change(vault, jwt_mount, names, play):
    pols, roles = policies_of(names), roles_of(names, jwt_mount)
    changed_pols = [pols[0], {"name": names[1], "policy": policy_text(names[1], names[1] + "-v2")}]
    changed_roles = [roles[0], roles_of(names[1:], jwt_mount, token_period="1h")[0]]
    res = play([
        task("check create", acl(policies=pols, jwt_roles=roles), check_mode=True),
        task("create", acl(policies=pols, jwt_roles=roles)),
        task("create again", acl(policies=pols, jwt_roles=roles)),
        task("change one policy and one token_period", acl(policies=changed_pols, jwt_roles=changed_roles)),
        task("change again", acl(policies=changed_pols, jwt_roles=changed_roles)),
    ], vault=vault)
    assert res.rc == 0, res.stdout + res.stderr
    check = res["check create"]
    assert check["changed"] is True
    assert [p["created"] and p["changed"] for p in check["policies"]] == [True, True]
    assert [r["created"] and r["changed"] for r in check["jwt_roles"]] == [True, True]
    # Four reads, no write in check mode (the create below finds them all absent).
    assert check["requests"] == 4
    create = res["create"]
    assert create["changed"] is True and create["requests"] == 8
    assert [p["name"] for p in create["policies"]] == names
    assert all(p["created"] for p in create["policies"]) and all(r["created"] for r in create["jwt_roles"])
    assert create["jwt_roles"][0]["differences"] == sorted(ROLE)
    again = res["create again"]
    assert again["changed"] is False and again["requests"] == 4
    assert not any(p["changed"] or p["created"] for p in again["policies"])
    assert not any(r["changed"] or r["created"] or r["differences"] for r in again["jwt_roles"])
    change = res["change one policy and one token_period"]
    assert change["changed"] is True and change["requests"] == 6
    assert [p["changed"] for p in change["policies"]] == [False, True]
    assert [r["changed"] for r in change["jwt_roles"]] == [False, True]
    assert change["jwt_roles"][1]["differences"] == ["token_period"]
    assert res["change again"]["changed"] is False
    # Vault holds the new values.
    got = vault.ok("GET", "sys/policies/acl/%s" % names[1])["data"]["policy"]
    assert got == changed_pols[1]["policy"]
    role_b = vault.ok("GET", "auth/%s/role/%s" % (jwt_mount, names[1]))["data"]
    assert role_b["token_period"] == 3600 and role_b["bound_claims"] == {"nomad_job_id": names[1]}
    role_a = vault.ok("GET", "auth/%s/role/%s" % (jwt_mount, names[0]))["data"]
    assert role_a["token_period"] == 1800 and role_a["token_policies"] == [names[0]]


def test_check_mode_writes_nothing(vault, jwt_mount, names, play):
    pols, roles = policies_of(names[:1]), roles_of(names[:1], jwt_mount)
    vault.ok("POST", "sys/policies/acl/%s" % names[0], {"policy": pols[0]["policy"]})
    vault.ok("POST", "auth/%s/role/%s" % (jwt_mount, names[0]), roles[0]["role"])
    new_text = policy_text(names[0], "other")
    res = play([
        task("check change", acl(policies=[{"name": names[0], "policy": new_text}],
                                 jwt_roles=roles_of(names[:1], jwt_mount, token_period=7200, token_ttl="15m"))),
        task("check create", acl(policies=policies_of(names[1:]), jwt_roles=roles_of(names[1:], jwt_mount))),
    ], vault=vault, check=True)
    assert res.rc == 0, res.stdout + res.stderr
    assert res["check change"]["changed"] is True
    assert res["check change"]["jwt_roles"][0]["differences"] == ["token_period", "token_ttl"]
    assert res["check create"]["changed"] is True
    assert vault.ok("GET", "sys/policies/acl/%s" % names[0])["data"]["policy"] == pols[0]["policy"]
    role = vault.ok("GET", "auth/%s/role/%s" % (jwt_mount, names[0]))["data"]
    assert role["token_period"] == 1800 and role["token_ttl"] == 0
    assert vault.api("GET", "sys/policies/acl/%s" % names[1]).status_code == 404
    assert vault.api("GET", "auth/%s/role/%s" % (jwt_mount, names[1])).status_code == 404


@pytest.mark.simulator_only
def test_request_counts(vault, jwt_mount, names, play):
    pols, roles = policies_of(names), roles_of(names, jwt_mount)
    res = play([task("create", acl(policies=pols, jwt_roles=roles))], vault=vault)
    assert res.rc == 0, res.stdout + res.stderr
    vault.sim.reset_log()
    res = play([task("unchanged", acl(policies=pols, jwt_roles=roles))], vault=vault)
    assert res.rc == 0 and res["unchanged"]["changed"] is False
    # One read per object and not one write: the idempotent re-run this module exists for.
    assert vault.count() == 4 == res["unchanged"]["requests"]
    assert vault.count("GET", "/v1/sys/policies/acl/") == 2
    assert vault.count("GET", "/v1/auth/%s/role/" % jwt_mount) == 2
    vault.sim.reset_log()
    res = play([task("one role changed", acl(policies=pols, jwt_roles=roles_of(names, jwt_mount)[:1]
                                             + roles_of(names[1:], jwt_mount, token_max_ttl="2h")))], vault=vault)
    assert res.rc == 0 and res["one role changed"]["changed"] is True
    assert vault.count("GET") == 4 and vault.count("POST") == 1 and vault.count() == 5
    assert vault.count("POST", "/v1/auth/%s/role/%s" % (jwt_mount, names[1])) == 1


def test_durations_lists_and_untouched_keys(vault, jwt_mount, names, play):
    name = names[0]
    base = {"user_claim": "sub", "bound_audiences": "a,b", "token_policies": ["p1", "p2"],
            "token_period": "1h30m", "token_max_ttl": 86400, "bound_claims": {"team": "ops"}}
    res = play([
        task("create", acl(jwt_roles=[{"name": name, "mount": jwt_mount, "role": base}])),
        task("same in other words", acl(jwt_roles=[{"name": name, "mount": jwt_mount, "role": {
            "user_claim": "sub", "bound_audiences": ["a", "b"], "token_policies": "p1,p2",
            "token_period": 5400, "token_max_ttl": "1d", "bound_claims": {"team": "ops"}}}])),
        task("legacy period equals token_period", acl(jwt_roles=[{"name": name, "mount": jwt_mount,
                                                                  "role": {"period": "90m"}}])),
        task("only some keys given", acl(jwt_roles=[{"name": name, "mount": jwt_mount,
                                                     "role": {"token_policies": ["p1", "p2"]}}])),
        task("list order matters", acl(jwt_roles=[{"name": name, "mount": jwt_mount,
                                                   "role": {"token_policies": ["p2", "p1"]}}])),
        task("dict value differs", acl(jwt_roles=[{"name": name, "mount": jwt_mount,
                                                   "role": {"bound_claims": {"team": "dev"}}}])),
    ], vault=vault)
    assert res.rc == 0, res.stdout + res.stderr
    assert res["create"]["changed"] is True
    for unchanged in ("same in other words", "legacy period equals token_period", "only some keys given"):
        assert res[unchanged]["changed"] is False, (unchanged, res[unchanged])
    assert res["list order matters"]["jwt_roles"][0]["differences"] == ["token_policies"]
    assert res["dict value differs"]["jwt_roles"][0]["differences"] == ["bound_claims"]
    role = vault.ok("GET", "auth/%s/role/%s" % (jwt_mount, name))["data"]
    # The keys not given were left as they were.
    assert role["token_period"] == 5400 and role["token_max_ttl"] == 86400 and role["user_claim"] == "sub"
    assert role["bound_claims"] == {"team": "dev"} and role["token_policies"] == ["p2", "p1"]


def test_unlisted_objects_are_left_alone(vault, jwt_mount, names, play):
    keep = policy_text(names[1], "keep")
    vault.ok("POST", "sys/policies/acl/%s" % names[1], {"policy": keep})
    vault.ok("POST", "auth/%s/role/%s" % (jwt_mount, names[1]), roles_of(names[1:], jwt_mount)[0]["role"])
    res = play([task("only a", acl(policies=policies_of(names[:1]), jwt_roles=roles_of(names[:1], jwt_mount)))],
               vault=vault)
    assert res.rc == 0, res.stdout + res.stderr
    assert vault.ok("GET", "sys/policies/acl/%s" % names[1])["data"]["policy"] == keep
    assert vault.api("GET", "auth/%s/role/%s" % (jwt_mount, names[1])).status_code == 200


def test_diff_shows_policy_text_and_compared_role_keys(vault, jwt_mount, names, play):
    name = names[0]
    old, new = policy_text(name, "old"), policy_text(name, "new")
    vault.ok("POST", "sys/policies/acl/%s" % name, {"policy": old})
    vault.ok("POST", "auth/%s/role/%s" % (jwt_mount, name), roles_of([name], jwt_mount)[0]["role"])
    tasks = [task("diff", acl(policies=[{"name": name, "policy": new}],
                              jwt_roles=roles_of([name], jwt_mount, token_period="45m")))]
    res = play(tasks, vault=vault, diff=True, check=True)
    assert res.rc == 0, res.stdout + res.stderr
    diff = res["diff"]["diff"]
    assert diff[0] == {"before_header": "sys/policies/acl/%s" % name, "after_header": "sys/policies/acl/%s" % name,
                       "before": old, "after": new}
    role_path = "auth/%s/role/%s" % (jwt_mount, name)
    assert diff[1]["before_header"] == diff[1]["after_header"] == role_path
    assert diff[1]["before"]["token_period"] == 1800 and diff[1]["after"]["token_period"] == 2700
    # Only the given (compared) keys, as Vault stores them.
    assert set(diff[1]["before"]) == set(diff[1]["after"]) == set(ROLE)
    assert diff[1]["after"]["bound_claims"] == {"nomad_job_id": name}
    # The default callback renders it as a unified diff; the token never shows.
    res = play(tasks, vault=vault, diff=True, check=True, callback="default")
    assert res.rc == 0, res.stdout + res.stderr
    assert '-path "kv/data/old" {' in res.stdout and '+path "kv/data/new" {' in res.stdout
    assert "\n-    token_period: 1800\n+    token_period: 2700\n" in res.stdout
    assert vault.token not in res.stdout + res.stderr


@pytest.mark.parametrize("options,message", [
    ({"policies": [{"policy": "x"}]}, "policies[0].name is required"),
    ({"policies": [{"name": "a", "policy": "# a"}, {"name": "b"}]},
     "policies[1].policy is required (the policy text, HCL or JSON)"),
    ({"policies": [{"name": "a", "policy": "# a"}, {"name": "A", "policy": "# b"}]},
     "policies[1].name 'A' is already given at policies[0]"),
    ({"jwt_roles": [{"name": "r", "role": {"user_claim": "sub"}}, {"name": "r", "role": {"user_claim": "sub"}},
                    {"role": {"user_claim": "sub"}}]},
     "jwt_roles[1].name 'r' is already given at jwt_roles[0] (mount jwt)"),
    ({"jwt_roles": [{"name": "r", "role": {"user_claim": "sub"}}, {"name": "s", "role": {"user_claim": "sub"}},
                    {"role": {"user_claim": "sub"}}]}, "jwt_roles[2].name is required"),
    ({"jwt_roles": [{"name": "r", "role": "user_claim=sub"}]},
     "jwt_roles[0].role must be a dictionary of role fields, got str"),
    ({"jwt_roles": [{"name": "r"}]}, "jwt_roles[0].role is required (the role fields, as for POST auth/jwt/role/r)"),
    ({"jwt_roles": [{"name": "r", "role": {"token_period": "1d12h"}}]},
     "jwt_roles[0].role.token_period: '1d12h' is not a duration (use seconds or a string like 30m, 1h30m, 90s)"),
    ({"jwt_roles": [{"name": "r", "roles": {}}]}, "jwt_roles[0] has unknown key(s) roles; expected name, role, mount"),
])
def test_bad_input_fails_before_any_request(vault, play, options, message):
    if vault.sim is not None:
        vault.sim.reset_log()
    res = play([task("bad", acl(**options), ignore_errors=True)], vault=vault)
    assert res.rc == 0, res.stdout + res.stderr
    assert res["bad"]["failed"] is True and res["bad"]["msg"] == message
    if vault.sim is not None:
        assert vault.count() == 0


def test_vault_refusal_names_what_was_written(vault, names, play):
    good = policies_of(names[:1])
    res = play([task("refused", acl(policies=good + [{"name": names[1], "policy": "path {"}]), ignore_errors=True)],
               vault=vault)
    assert res.rc == 0, res.stdout + res.stderr
    msg = res["refused"]["msg"]
    assert msg.startswith("Vault answered HTTP 400 on POST sys/policies/acl/%s: " % names[1]), msg
    assert msg.endswith("(already written: sys/policies/acl/%s)" % names[0]), msg
    assert "\n" not in msg
    assert vault.ok("GET", "sys/policies/acl/%s" % names[0])["data"]["policy"] == good[0]["policy"]


def test_token_is_not_logged(vault, jwt_mount, names, play):
    res = play([task("verbose", acl(policies=policies_of(names[:1])))], vault=vault, verbosity=3,
               callback="default")
    assert res.rc == 0, res.stdout + res.stderr
    assert vault.token not in res.stdout + res.stderr
    assert json.dumps(vault.token) not in res.stdout
