"""vault_kv unit tests: the cases in cases.yml, in normal, check and diff modes.

hvac's adapter is replaced by a fake that asserts each request the module
sends (method, path, JSON body) and answers with the recorded Vault response
from tests/unit/fixtures/vault/. Requests marked ``write`` must not be sent in
check mode; any request not in the case fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ansible_collections.selfhost.homelab.plugins.modules import vault_kv

from tests.support.hvac_fake import run_module

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parents[2] / "fixtures" / "vault"
CASES = yaml.safe_load((HERE / "cases.yml").read_text())
URL = "http://vault.test:8200"


def run(case, mode, monkeypatch):
    args = {"url": URL, "token": "hvs.test", **case["params"]}
    if mode == "check":
        args["_ansible_check_mode"] = True
    if mode == "diff":
        args["_ansible_diff"] = True
    expected = [r for r in case["requests"] if not (mode == "check" and r.get("write"))]
    result, fake, run.module = run_module(vault_kv, args, expected, FIXTURES, monkeypatch)
    return result, fake


PARAMS = [
    pytest.param(case, mode, id="%s [%s]" % (case["id"], mode))
    for case in CASES
    for mode in case.get("modes", ["normal", "check", "diff"])
]


@pytest.mark.parametrize("case,mode", PARAMS)
def test_case(case, mode, monkeypatch):
    result, fake = run(case, mode, monkeypatch)
    assert not fake.expected, "requests not sent: %s" % fake.expected
    if "failed" in case:
        assert result["failed"] is True
        assert result["msg"] == case["failed"]
        writes = [p for m, p in fake.sent[:-1] if m != "GET" and not p.startswith("auth/")]
        # Only a write Vault refuses half-way through a batch leaves earlier writes (the message names them).
        assert writes == case.get("written_before_failure", []), \
            "a failing run must not have written anything before the failure"
        return
    assert result["failed"] is False, result.get("msg")
    for key, value in case.get("result", {}).items():
        if mode == "check" and key == "version" and case["result"].get("changed"):
            continue  # check mode reports the version a write would create
        if mode == "check" and key == "requests":
            value = len(fake.sent)  # the case's writes were not sent (the fake refuses them in check mode)
        assert result[key] == value, key
    if mode == "diff":
        if "diff" in case:
            assert result["diff"] == case["diff"]
        assert ("diff" in result) is (case["params"].get("state") != "read")
    else:
        assert "diff" not in result


def test_every_fixture_is_used():
    used = {r["fixture"] for c in CASES for r in c["requests"] if "fixture" in r}
    recorded = {p.stem for p in FIXTURES.glob("*.json")}
    assert recorded - used <= {"kv2_write_v2", "kv2_write_v3"}


def test_batch_never_returns_a_value_and_marks_every_value_no_log(monkeypatch):
    """secrets[].data is no_log: Ansible masks its values everywhere; the module itself never returns them."""
    new = {"password": "n3w-pw-value", "token": "t0ken-value"}
    case = {"params": {"mount": "kv", "engine_version": "2", "secrets": [
        {"path": "a", "data": {"user": "admin", "password": "pw3"}},
        {"path": "b", "data": new},
        {"path": "c", "merge": True, "data": {"api_key": "k3y-value"}},
    ]}, "requests": [
        {"method": "GET", "path": "kv/data/a", "fixture": "kv2_read_v3"},
        {"method": "GET", "path": "kv/data/b", "fixture": "kv2_read_v3"},
        {"method": "GET", "path": "kv/data/c", "fixture": "kv2_read_v3"},
        {"method": "POST", "path": "kv/data/b", "json": {"data": new, "options": {"cas": 3}},
         "fixture": "kv2_write_v4", "write": True},
        {"method": "POST", "path": "kv/data/c", "fixture": "kv2_write_v4", "write": True,
         "json": {"data": {"user": "admin", "password": "pw3", "api_key": "k3y-value"}, "options": {"cas": 3}}},
    ]}
    for mode in ("normal", "check", "diff"):
        result, fake = run(case, mode, monkeypatch)
        assert result["failed"] is False, result.get("msg")
        assert not fake.expected
        text = json.dumps(result)
        # Neither the given values nor the stored ones (admin/pw3 come from Vault) are in the result.
        for value in ("admin", "pw3", "n3w-pw-value", "t0ken-value", "k3y-value"):
            assert value not in text, (mode, value)
        assert [s["path"] for s in result["secrets"]] == ["a", "b", "c"]
        no_log = run.module.no_log_values
        assert {"admin", "pw3", "n3w-pw-value", "t0ken-value", "k3y-value"} <= no_log
        assert not {"a", "b", "c", "kv"} & no_log, "paths and the mount must stay readable"
