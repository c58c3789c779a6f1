"""Pure helpers of vault_kv: input validation, merge, redacted diff, Vault error text."""

from __future__ import annotations

import pytest
from ansible_collections.selfhost.homelab.plugins.module_utils._vault import VaultError, flatten_errors
from ansible_collections.selfhost.homelab.plugins.module_utils._vault_kv import (
    REDACTED,
    REDACTED_CHANGED,
    desired_data,
    redacted_diff,
    validate,
)

BASE = {"path": "app", "mount": "kv", "state": "present", "data": {"a": "1"}, "merge": False, "cas": None,
        "versions": None, "destroy": False, "delete_metadata": False, "version": None, "metadata": None}


@pytest.mark.parametrize("change,message", [
    ({"path": "/"}, "path must not be empty"),
    ({"path": "a/../b"}, "without empty"),
    ({"mount": ""}, "mount must not be empty"),
    ({"data": None}, "data is required with state=present"),
    ({"data": {}}, "data must not be empty"),
    ({"data": {"a": object()}}, "data must be JSON-serialisable"),
    ({"cas": -1}, "cas must be 0"),
    ({"state": "absent", "data": None, "versions": [0]}, "versions must be a non-empty list"),
    ({"versions": [1]}, "versions is only used with state=absent"),
    ({"state": "absent", "data": None, "delete_metadata": True, "destroy": True}, "do not combine"),
    ({"state": "read", "data": None, "version": 0}, "version must be >= 1"),
    ({"metadata": {"max_versions": -1}}, "metadata.max_versions must be >= 0"),
    ({"metadata": {"delete_version_after": "soon"}}, "is not a duration"),
    ({"metadata": {"custom_metadata": {"k": "v" * 600}}}, "at most 512"),
    ({"merge": True, "state": "absent", "data": None}, "merge is only used with state=present"),
])
def test_validate_rejects_bad_input_naming_the_field(change, message):
    with pytest.raises(VaultError, match=message):
        validate({**BASE, **change})


BATCH = {**BASE, "path": None, "data": None, "engine_version": "2",
         "secrets": [{"path": "a", "data": {"x": "1"}, "merge": None, "cas": None},
                     {"path": "b/c", "data": {"y": "2"}, "merge": None, "cas": 2}]}


def _item(**change):
    return {"path": "z", "data": {"k": "v"}, "merge": None, "cas": None, **change}


@pytest.mark.parametrize("change,message", [
    ({"state": "read"}, r"^secrets is only used with state=present, not state=read$"),
    ({"path": "a"}, r"^path cannot be combined with secrets; give it in each item \(secrets\[\]\.path\)$"),
    ({"data": {"a": "1"}}, r"^data cannot be combined with secrets"),
    ({"cas": 1}, r"^cas cannot be combined with secrets; give it in each item"),
    ({"metadata": {"max_versions": 2}}, r"^metadata cannot be combined with secrets; use a task for that one"),
    ({"mount": "/"}, r"^mount must not be empty$"),
    ({"secrets": [_item(), _item(path=None)]}, r"^secrets\[1\]\.path is required$"),
    ({"secrets": [_item(path="/")]}, r"^secrets\[0\]\.path must not be empty$"),
    ({"secrets": [_item(), _item(path="x"), _item(path="a/../b")]}, r"^secrets\[2\]\.path 'a/\.\./b' must be a"),
    ({"secrets": [_item(path=3)]}, r"^secrets\[0\]\.path must be a string, got int$"),
    ({"secrets": [_item(data=None)]}, r"^secrets\[0\]\.data is required with state=present$"),
    ({"secrets": [_item(data={})]}, r"^secrets\[0\]\.data must not be empty"),
    ({"secrets": [_item(data={"": "v"})]}, r"^secrets\[0\]\.data keys must be non-empty strings"),
    ({"secrets": [_item(data={"a": object()})]}, r"^secrets\[0\]\.data must be JSON-serialisable"),
    ({"secrets": [_item(cas=-1)]}, r"^secrets\[0\]\.cas must be 0"),
    ({"secrets": [_item(path="a"), _item(path="a/")]}, r"^secrets\[1\]\.path 'a' is given twice \(also secrets\[0\]\)"),
    ({"secrets": ["a"]}, r"^secrets\[0\] must be a dictionary with path and data, got str$"),
])
def test_validate_batch_names_the_item_and_field(change, message):
    with pytest.raises(VaultError, match=message):
        validate({**BATCH, **change})


def test_validate_batch_accepts_good_input():
    validate(BATCH)
    validate({**BATCH, "secrets": []})
    # An empty data is fine when the item merges (it changes nothing), also through the top-level merge.
    validate({**BATCH, "secrets": [_item(data={}, merge=True)]})
    validate({**BATCH, "merge": True, "secrets": [_item(data={})]})


def test_validate_accepts_good_input():
    validate(BASE)
    validate({**BASE, "metadata": {"delete_version_after": "1h30m", "max_versions": 0, "custom_metadata": None}})
    validate({**BASE, "merge": True, "data": {}})


def test_desired_data():
    assert desired_data({"a": 1, "b": 2}, {"b": 3}, merge=False) == {"b": 3}
    assert desired_data({"a": 1, "b": 2}, {"b": 3, "a": None}, merge=True) == {"b": 3}
    assert desired_data(None, {"x": "y"}, merge=True) == {"x": "y"}


def test_redacted_diff_hides_values_but_shows_which_changed():
    before, after = redacted_diff({"a": "s1", "b": "s2"}, {"a": "s1", "b": "new", "c": "s3"})
    assert before == {"a": REDACTED, "b": REDACTED}
    assert after == {"a": REDACTED, "b": REDACTED_CHANGED, "c": REDACTED_CHANGED}
    assert "s1" not in repr((before, after))
    assert redacted_diff({"a": "s1"}, {"a": "s2"}, show_values=True) == ({"a": "s1"}, {"a": "s2"})


@pytest.mark.parametrize("body,text", [
    ({"errors": ["1 error occurred:\n\t* permission denied\n\n"]}, "permission denied"),
    ({"errors": ["Vault is sealed"]}, "Vault is sealed"),
    ({"errors": []}, ""),
    ({"errors": ["2 errors occurred:\n\t* a\n\t* b\n\n"]}, "a; b"),
    ("404 page not found\n", "404 page not found"),
])
def test_flatten_errors(body, text):
    assert flatten_errors(body) == text
