"""Run a module's main() in the test's process and catch what it exits with.

``run_main(module, args, monkeypatch)`` patches the module's AnsibleModule so that exit_json and
fail_json raise ``Exit`` (the result, with ``failed``) instead of leaving the process, runs
``module.main()`` with ``args``, and returns (result, the AnsibleModule on success or None).
"""

from __future__ import annotations

import pytest
from ansible.module_utils.testing import patch_module_args


class Exit(Exception):
    """What exit_json/fail_json raise: the module's result (and the AnsibleModule on success)."""

    def __init__(self, result, module=None):
        super().__init__(result)
        self.result = result
        self.module = module


def run_main(module, args, monkeypatch):
    def exit_json(self, **result):
        raise Exit(dict(result, failed=False), self)

    def fail_json(self, msg, **result):
        raise Exit(dict(result, failed=True, msg=msg))

    monkeypatch.setattr(module.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(module.AnsibleModule, "fail_json", fail_json)
    with patch_module_args(args), pytest.raises(Exit) as exc:
        module.main()
    return exc.value.result, exc.value.module
