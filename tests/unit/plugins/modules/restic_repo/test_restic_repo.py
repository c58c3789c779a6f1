"""restic_repo unit tests, community.general style.

Each case in restic_repo.yaml gives the module input, the mode (normal, check
or diff), the exact argv of every restic call in order with the recorded
output it gets back (fixtures/<version>/<name>.{out,err,rc}, recorded from the
real binaries by record_fixtures.py), and the expected result.
"""

import json
import os
import socket

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.selfhost.homelab.plugins.modules import restic_repo

HERE = os.path.dirname(os.path.abspath(__file__))
RESTIC = "/usr/bin/restic"
with open(os.path.join(HERE, "restic_repo.yaml")) as _f:
    CASES = yaml.safe_load(_f)

SECRET_KEYS = ("password", "password_command", "aws_secret_access_key", "b2_account_key", "aws_session_token")


def _fixture(version, name):
    base = os.path.join(HERE, "fixtures", version, name)
    out = {}
    for ext in ("out", "err", "rc"):
        with open("%s.%s" % (base, ext)) as f:
            out[ext] = f.read()
    return int(out["rc"]), out["out"], out["err"]


def _reply(version, call):
    if "fixture" in call:
        return _fixture(version, call["fixture"])
    return call.get("rc", 0), call.get("out", ""), call.get("err", "")


class _Runner:
    def __init__(self, case):
        self.version = str(case.get("version", "0.18"))
        calls = case.get("calls", [])
        if calls is not None and not case.get("no_version_call"):
            calls = [{"argv": [RESTIC, "version"], "fixture": "version"}] + calls
        self.expected = calls or []
        self.seen = []
        self.envs = []

    def __call__(self, module, args, environ_update=None, data=None, binary_data=False, **kwargs):
        index = len(self.seen)
        self.seen.append(list(args))
        self.envs.append(dict(environ_update or {}))
        assert index < len(self.expected), "unexpected restic call #%d: %s" % (index, args)
        want = self.expected[index]
        assert list(args) == want["argv"], "call #%d argv differs" % index
        for key, value in (want.get("env") or {}).items():
            assert (environ_update or {}).get(key) == value, "call #%d env %s" % (index, key)
        return _reply(self.version, want)


def _bound(runner):
    """run_command as a method: the module passes itself first."""

    def run_command(self, *args, **kwargs):
        return runner(self, *args, **kwargs)

    return run_command


def _run(case, monkeypatch, capsys):
    mode = case.get("mode", "normal")
    args = dict(case["input"])
    args["_ansible_check_mode"] = mode == "check"
    args["_ansible_diff"] = mode == "diff"
    runner = _Runner(case)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", _bound(runner))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: RESTIC)
    monkeypatch.setattr(socket, "gethostname", lambda: "testhost")
    for key, value in (case.get("environ") or {}).items():
        monkeypatch.setenv(key, value)
    for key in ("RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND"):
        if key not in (case.get("environ") or {}):
            monkeypatch.delenv(key, raising=False)
    with patch_module_args(args), pytest.raises(SystemExit):
        restic_repo.main()
    raw = capsys.readouterr().out
    return runner, json.loads(raw), raw


def _subset(expected, actual, path="result"):
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, "%s.%s missing" % (path, key)
            _subset(value, actual[key], "%s.%s" % (path, key))
    else:
        assert actual == expected, "%s: %r != %r" % (path, actual, expected)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case, monkeypatch, capsys):
    runner, result, raw = _run(case, monkeypatch, capsys)
    expect = case["expect"]
    assert runner.seen == [c["argv"] for c in runner.expected], "restic was not called as expected"
    assert bool(result.get("failed")) == bool(expect.get("failed", False)), result.get("msg")
    if "changed" in expect:
        assert result["changed"] == expect["changed"]
    if "msg" in expect:
        assert expect["msg"] in result["msg"]
    for key in expect.get("absent", []):
        assert key not in result
    if "len" in expect:
        for key, n in expect["len"].items():
            assert len(result[key]) == n, key
    _subset(expect.get("result", {}), result)
    if case.get("mode") == "diff" and not expect.get("failed"):
        assert "before" in result["diff"] and "after" in result["diff"]
    # Secrets: never in argv, never in the module's output.
    for key in SECRET_KEYS:
        secret = case["input"].get(key)
        if secret:
            assert all(secret not in " ".join(argv) for argv in runner.seen), key
            assert secret not in raw, key
    for secret in expect.get("not_in_output", []):
        assert secret not in raw
        assert all(secret not in " ".join(argv) for argv in runner.seen)
