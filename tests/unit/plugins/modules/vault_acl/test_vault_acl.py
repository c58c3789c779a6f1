"""vault_acl unit tests: the cases in cases.yml, in normal, check and diff modes.

hvac's adapter is replaced by a fake that asserts each request the module
sends (method, path, JSON body) and answers with the recorded Vault response
from tests/unit/fixtures/vault_acl/. Requests marked ``write`` must not be sent
in check mode; any request not in the case fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.selfhost.homelab.plugins.modules import vault_acl

from tests.support.hvac_fake import run_module

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parents[2] / "fixtures" / "vault_acl"
CASES = yaml.safe_load((HERE / "cases.yml").read_text())
URL = "http://vault.test:8200"


def run(params, mode, expected, monkeypatch):
    args = {"url": URL, "token": "hvs.test", **params}
    if mode == "check":
        args["_ansible_check_mode"] = True
    if mode == "diff":
        args["_ansible_diff"] = True
    result, fake, _module = run_module(vault_acl, args, expected, FIXTURES, monkeypatch)
    return result, fake


PARAMS = [
    pytest.param(case, mode, id="%s [%s]" % (case["id"], mode))
    for case in CASES
    for mode in case.get("modes", ["normal", "check", "diff"])
]


@pytest.mark.parametrize("case,mode", PARAMS)
def test_case(case, mode, monkeypatch):
    expected = [r for r in case["requests"] if not (mode == "check" and r.get("write"))]
    result, fake = run(case["params"], mode, expected, monkeypatch)
    assert not fake.expected, "requests not sent: %s" % fake.expected
    if mode == "check":
        assert all(method == "GET" for method, _path in fake.sent), fake.sent
    if "failed" in case:
        assert result["failed"] is True
        assert result["msg"] == case["failed"]
        # Every read comes before the first write, so a failing read has written nothing.
        methods = [method for method, _path in fake.sent]
        assert methods == sorted(methods, key=lambda m: m != "GET"), fake.sent
        return
    assert result["failed"] is False, result.get("msg")
    assert result["requests"] == len(fake.sent)
    for key, value in case.get("result", {}).items():
        assert result[key] == value, key
    if mode == "diff":
        if "diff" in case:
            assert result["diff"] == case["diff"]
        assert isinstance(result["diff"], list)
    else:
        assert "diff" not in result


def test_every_fixture_is_used():
    used = {r["fixture"] for c in CASES for r in c["requests"] if "fixture" in r}
    recorded = {p.stem for p in FIXTURES.glob("*.json")}
    assert recorded == used


def test_missing_hvac_fails_with_missing_required_lib(monkeypatch):
    monkeypatch.setattr(vault_acl, "HVAC_IMPORT_ERROR", "Traceback: No module named 'hvac'")
    result, fake = run({"policies": [{"name": "web", "policy": "# web"}]}, "normal", [], monkeypatch)
    assert result["failed"] is True and "hvac" in result["msg"] and not fake.sent


def test_the_token_is_no_log():
    spec = vault_acl.vault_argument_spec()
    assert spec["token"]["no_log"] is True
