"""A stand-in for hvac's HTTP adapter, for the unit tests of the Vault modules (vault_kv, vault_acl).

The fake asserts each request a module sends (method, path, JSON body) against a case's list of
expected requests and answers each with the recorded Vault response named by ``fixture`` (a JSON
file ``{"status": ..., "body": ...}`` in the module's fixtures directory), or with a bare
``status``. ``raise: connection_refused`` makes the request fail as an unreachable Vault does.
Any request not in the list fails the test; ``run_module`` runs a module's main() with it.
"""

from __future__ import annotations

import json

import requests

from tests.support.module_main import run_main


def response(spec, fixtures):
    resp = requests.Response()
    if "fixture" in spec:
        recorded = json.loads((fixtures / (spec["fixture"] + ".json")).read_text())
        resp.status_code = recorded["status"]
        resp._content = json.dumps(recorded["body"]).encode() if recorded["body"] is not None else b""
    else:
        resp.status_code = spec["status"]
        resp._content = b""
    resp.headers["Content-Type"] = "application/json"
    return resp


class FakeAdapter:
    def __init__(self, expected, fixtures):
        self.expected = list(expected)
        self.fixtures = fixtures
        self.sent = []

    def request(self, method, url, headers=None, raise_exception=True, **kwargs):
        assert self.expected, "unexpected request %s %s" % (method, url)
        spec = self.expected.pop(0)
        path = url[len("/v1/"):]
        self.sent.append((method, path))
        assert (method, path) == (spec["method"], spec["path"])
        if "json" in spec:
            assert kwargs.get("json") == spec["json"]
        if spec.get("raise") == "connection_refused":
            raise requests.exceptions.ConnectionError(
                "HTTPConnectionPool(host='vault.test', port=8200): Max retries exceeded "
                "(Caused by NewConnectionError('[Errno 111] Connection refused'))")
        return response(spec, self.fixtures)


def run_module(module, args, expected, fixtures, monkeypatch):
    """Run ``module.main()`` with ``args`` against the fake; return (result, fake, AnsibleModule or None)."""
    fake = FakeAdapter(expected, fixtures)
    monkeypatch.setattr("hvac.adapters.RawAdapter.request", fake.request)
    result, ansible_module = run_main(module, args, monkeypatch)
    return result, fake, ansible_module
