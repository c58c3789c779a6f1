"""consul_acl unit tests: the cases in cases.yml, in normal, check and diff modes.

``open_url`` is replaced by a fake that asserts each request the module sends (method, path, token,
JSON body) and answers with the case's response. Requests marked ``write`` must not be sent in check
mode; any request not in the case fails the test.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.error import HTTPError, URLError

import pytest
import yaml
from ansible_collections.selfhost.homelab.plugins.module_utils import _consul
from ansible_collections.selfhost.homelab.plugins.modules import consul_acl

from tests.support.module_main import run_main

HERE = Path(__file__).resolve().parent
CASES = yaml.safe_load((HERE / "cases.yml").read_text())
URL = "http://consul.test:8500"
TOKEN = "0e1e7b6a-0000-4000-8000-000000000000"


class Answer:
    def __init__(self, status, raw):
        self.status, self.raw = status, raw

    def getcode(self):
        return self.status

    def read(self):
        return self.raw


class FakeConsul:
    def __init__(self, expected):
        self.expected = list(expected)
        self.sent = []

    def open_url(self, url, method=None, data=None, headers=None, **kwargs):
        assert self.expected, "unexpected request %s %s" % (method, url)
        spec = self.expected.pop(0)
        path = url[len(URL + "/v1/"):]
        self.sent.append((method, path))
        assert (method, path) == (spec["method"], spec["path"])
        assert headers.get("X-Consul-Token") == spec.get("token", TOKEN)
        if "json" in spec:
            assert json.loads(data) == spec["json"]
        body = spec.get("body")
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        if spec["status"] >= 400:
            raise HTTPError(url, spec["status"], "error", {}, io.BytesIO(raw))
        return Answer(spec["status"], raw)


def run(params, mode, expected, monkeypatch, opener=None):
    args = {"url": URL, "token": TOKEN, **params}
    if mode == "check":
        args["_ansible_check_mode"] = True
    if mode == "diff":
        args["_ansible_diff"] = True
    fake = FakeConsul(expected)
    monkeypatch.setattr(_consul, "open_url", opener or fake.open_url)

    result, _module = run_main(consul_acl, args, monkeypatch)
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
    methods = [method for method, _path in fake.sent]
    # Every read comes before the first write.
    assert methods == sorted(methods, key=lambda m: m != "GET"), fake.sent
    if "failed" in case:
        assert result["failed"] is True
        assert result["msg"] == case["failed"]
        return
    assert result["failed"] is False, result.get("msg")
    assert result["requests"] == len(fake.sent)
    for key, value in case.get("result", {}).items():
        if key == "requests" and mode == "check":
            continue
        assert result[key] == value, key
    if mode == "diff":
        if "diff" in case:
            assert result["diff"] == case["diff"]
        assert isinstance(result["diff"], list)
    else:
        assert "diff" not in result


def test_check_mode_reports_a_new_token_without_an_accessor(monkeypatch):
    case = next(c for c in CASES if c["id"].startswith("create a policy"))
    expected = [r for r in case["requests"] if not r.get("write")]
    result, fake = run(case["params"], "check", expected, monkeypatch)
    assert result["changed"] is True and result["created_tokens"] == ["web"]
    assert result["tokens"][0]["accessor_id"] is None and result["requests"] == 3
    normal, fake = run(case["params"], "normal", case["requests"], monkeypatch)
    assert normal["tokens"][0]["accessor_id"] == "bbbbbbbb-0000-0000-0000-000000000001"


@pytest.mark.parametrize("params, message", [
    ({"policies": [{"name": "a", "rules": "x"}, {"name": "a", "rules": "y"}]},
     "policies[1].name 'a' is already given at policies[0]"),
    ({"policies": [{"rules": "x"}]}, "policies[0].name is required"),
    ({"policies": [{"name": "web", "rules": "x"}, {"name": "Web", "rules": "y"}]},
     "policies[1].name 'Web' is already given at policies[0]"),
    ({"policies": [{"name": "a/b", "rules": "x"}]}, "policies[0].name 'a/b' must be 1 to 128 letters"),
    ({"policies": [{"name": "a"}]}, "policies[0].rules is required"),
    ({"tokens": [{"name": "t", "policies": []}]}, "tokens[0].secret_id is required"),
    ({"tokens": [{"name": "t", "secret_id": "s3cr3t", "policies": []}]}, "tokens[0].secret_id must be a UUID"),
    ({"tokens": [{"secret_id": TOKEN, "policies": []}]}, "tokens[0].name is required"),
    ({"tokens": [{"name": "t", "secret_id": TOKEN}]}, "tokens[0].policies is required"),
    ({"tokens": [{"name": "t", "secret_id": TOKEN, "policies": ["ok", "no way"]}]},
     "tokens[0].policies[1] 'no way' must be 1 to 128 letters"),
    ({"tokens": [{"name": "t", "secret_id": TOKEN, "policies": ["a", "a"]}]},
     "tokens[0].policies names a policy twice"),
    ({"tokens": [{"name": "t", "secret_id": TOKEN, "policies": []},
                 {"name": "u", "secret_id": TOKEN.upper(), "policies": []}]},
     "tokens[1].secret_id is the same as tokens[0].secret_id"),
    ({"tokens": [{"name": "t", "secret_id": TOKEN, "policies": []},
                 {"name": "t", "secret_id": "0e1e7b6a-0000-4000-8000-000000000001", "policies": []}]},
     "tokens[1].name 't' is already given at tokens[0]"),
    ({"url": "ftp://consul.test"}, "url: 'ftp://consul.test' is not an http(s) URL"),
])
def test_bad_input_fails_before_any_request(params, message, monkeypatch):
    result, fake = run(params, "normal", [], monkeypatch)
    assert result["failed"] is True and result["msg"].startswith(message), result["msg"]
    assert not fake.sent
    assert "s3cr3t" not in result["msg"]


def test_unreachable_consul_is_one_line(monkeypatch):
    def refuse(url, **kwargs):
        raise URLError(ConnectionRefusedError(111, "Connection refused"))

    result, _fake = run({"policies": [{"name": "a", "rules": "x"}]}, "normal", [], monkeypatch, opener=refuse)
    assert result["msg"] == ("GET /v1/acl/policies: cannot reach Consul at %s: [Errno 111] Connection refused" % URL)


def test_secrets_are_no_log():
    spec = consul_acl.consul_argument_spec()
    assert spec["token"]["no_log"] is True
    # The tokens' secret_id is declared no_log in main()'s argument spec.
    assert "no_log=True" in Path(consul_acl.__file__).read_text().split("secret_id=dict(")[1].split(")")[0]
