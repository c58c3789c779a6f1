"""selfhost.homelab.directories: the module run in-process (a real AnsibleModule) against a tmp dir."""

from __future__ import annotations

import json
import os
import stat

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.selfhost.homelab.plugins.module_utils._directories import (
    DirectoriesError,
    check_mode_value,
    inspect,
)
from ansible_collections.selfhost.homelab.plugins.modules import directories


def run(capsys, items, check=False, diff=False):
    args = {"directories": items, "_ansible_check_mode": check, "_ansible_diff": diff}
    with patch_module_args(args), pytest.raises(SystemExit):
        directories.main()
    return json.loads(capsys.readouterr().out)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def tree(root):
    return {os.path.join(b, d): os.lstat(os.path.join(b, d)) for b, ds, _f in os.walk(root) for d in ds}


def snapshot(root):
    return {p: (st.st_mode, st.st_uid, st.st_gid) for p, st in tree(root).items()}


@pytest.mark.parametrize(("start", "mode", "changes", "result"), [
    (0o755, "0755", False, 0o755),
    (0o755, "755", False, 0o755),
    (0o755, 0o755, False, 0o755),
    (0o755, "u=rwx,g=rx,o=rx", False, 0o755),
    (0o777, "go-w", True, 0o755),
    (0o700, "a+rX", True, 0o755),
    (0o755, "u=rwx,g=rx,o=", True, 0o750),
    (0o750, "0750", False, 0o750),
    (0o750, "2750", True, 0o2750),
])
def test_modes_compare_as_the_file_module(tmp_path, capsys, start, mode, changes, result):
    target = tmp_path / "d"
    target.mkdir()
    os.chmod(target, start)
    out = run(capsys, [{"path": str(target), "mode": mode}])
    assert out["changed"] is changes
    assert mode_of(target) == result
    assert out["directories"][0]["mode"] == "0%03o" % result


def test_creates_parents_with_the_items_attributes(tmp_path, capsys):
    deep = tmp_path / "a" / "b" / "c"
    out = run(capsys, [{"path": str(deep), "mode": "0701", "owner": str(os.getuid()), "group": str(os.getgid())}])
    assert out["changed"] is True
    assert out["directories"][0]["created"] == [str(tmp_path / "a"), str(tmp_path / "a/b"), str(deep)]
    assert [mode_of(p) for p in (tmp_path / "a", tmp_path / "a/b", deep)] == [0o701] * 3
    assert mode_of(tmp_path) != 0o701
    again = run(capsys, [{"path": str(deep), "mode": "0701"}])
    assert again["changed"] is False
    assert again["directories"][0]["created"] == []


def test_order_and_a_later_item_inside_an_earlier_one(tmp_path, capsys):
    items = [{"path": str(tmp_path / "x"), "mode": "0700"}, {"path": str(tmp_path / "x/y"), "mode": "0755"}]
    out = run(capsys, items)
    assert [d["changed"] for d in out["directories"]] == [True, True]
    assert (mode_of(tmp_path / "x"), mode_of(tmp_path / "x/y")) == (0o700, 0o755)


def file_and_link(root):
    (root / "f").write_text("x")
    os.symlink(root / "f", root / "l")


@pytest.mark.parametrize(("make", "path", "needle"), [
    (lambda r: (r / "f").write_text("x"), "f", "directories[1].path: {r}/f already exists as a file"),
    (lambda r: (r / "f").write_text("x"), "f/sub", "directories[1].path: cannot create {r}/f/sub: its parent {r}/f"),
    (file_and_link, "l",
     "directories[1].path: {r}/f (link target of {r}/l) already exists as a file"),
    (file_and_link, "l/sub",
     "directories[1].path: cannot create {r}/l/sub: its parent {r}/l exists as a link"),
])
def test_refuses_what_is_in_the_way_before_any_change(tmp_path, capsys, make, path, needle):
    make(tmp_path)
    (tmp_path / "keep").mkdir()
    os.chmod(tmp_path / "keep", 0o755)
    before = snapshot(tmp_path)
    out = run(capsys, [{"path": str(tmp_path / "keep"), "mode": "0700"}, {"path": str(tmp_path / path)}])
    assert out["failed"] is True
    assert out["msg"].startswith(needle.format(r=tmp_path)), out["msg"]
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(("item", "needle"), [
    ({"owner": "no-such-user-x"}, "directories[0].owner: no such user 'no-such-user-x'"),
    ({"group": "no-such-group-x"}, "directories[0].group: no such group 'no-such-group-x'"),
    ({"mode": "rwxr-xr-x"}, "directories[0].mode: mode 'rwxr-xr-x' must be in octal or symbolic form"),
    ({"mode": "999"}, "directories[0].mode: "),
    ({"mode": 0o17777}, "directories[0].mode: mode 8191 is not a permission mode"),
    ({"mode": True}, "directories[0].mode: mode must be in octal or symbolic form"),
])
def test_bad_items_fail_naming_the_field(tmp_path, capsys, item, needle):
    out = run(capsys, [dict(item, path=str(tmp_path / "new"))])
    assert out["failed"] is True
    assert out["msg"].startswith(needle), out["msg"]
    assert not (tmp_path / "new").exists()


def test_relative_path_refused(tmp_path):
    with pytest.raises(DirectoriesError, match=r"^directories\[0\].path: 'rel/x' is not an absolute path"):
        inspect(AnsibleModule, [{"path": "rel/x"}])


@pytest.mark.parametrize("mode", ["0755", 0o755, "u=rwx,go=rx", "a+rX", "u+s", "=r", "1777"])
def test_good_modes_pass(mode):
    check_mode_value(AnsibleModule, mode, "directories[0].mode")


def test_check_mode_changes_nothing_and_says_what_would(tmp_path, capsys):
    (tmp_path / "there").mkdir()
    os.chmod(tmp_path / "there", 0o777)
    before = snapshot(tmp_path)
    items = [{"path": str(tmp_path / "there"), "mode": "go-w"}, {"path": str(tmp_path / "n/m"), "mode": "u=rwx,go="},
             {"path": str(tmp_path / "plain")}]
    out = run(capsys, items, check=True, diff=True)
    assert snapshot(tmp_path) == before
    assert out["changed"] is True
    first, second, third = out["directories"]
    assert (first["changed"], first["mode"], first["state"]) == (True, "0755", "directory")
    assert (second["changed"], second["mode"], second["created"]) == (
        True, "0700", [str(tmp_path / "n"), str(tmp_path / "n/m")])
    assert (third["changed"], third["mode"], third["owner"]) == (True, None, None)
    assert out["diff"][0]["before"] == {"path": str(tmp_path / "there"), "mode": "0777"}
    assert out["diff"][0]["after"] == {"path": str(tmp_path / "there"), "mode": "0755"}
    assert out["diff"][1]["after"] == {"path": str(tmp_path / "n/m"), "state": "directory", "mode": "0700"}
    # The real run then does what check mode announced.
    done = run(capsys, items)
    assert [d["mode"] for d in done["directories"][:2]] == ["0755", "0700"]
    assert run(capsys, items, check=True)["changed"] is False


def test_no_diff_key_without_diff_mode(tmp_path, capsys):
    out = run(capsys, [{"path": str(tmp_path / "d")}])
    assert "diff" not in out
    assert out["directories"][0]["state"] == "directory"


def test_a_parent_made_by_an_earlier_item_still_gets_its_own_item(tmp_path, capsys):
    items = [{"path": str(tmp_path / "p/q/r"), "mode": "0755"}, {"path": str(tmp_path / "p/q"), "mode": "0700"}]
    check = run(capsys, items, check=True)
    assert check["directories"][0]["created"] == [str(tmp_path / "p"), str(tmp_path / "p/q"), str(tmp_path / "p/q/r")]
    assert (check["directories"][1]["changed"], check["directories"][1]["created"]) == (True, [])
    assert not (tmp_path / "p").exists()
    out = run(capsys, items)
    assert [d["changed"] for d in out["directories"]] == [True, True]
    assert (mode_of(tmp_path / "p"), mode_of(tmp_path / "p/q"), mode_of(tmp_path / "p/q/r")) == (0o755, 0o700, 0o755)
    assert run(capsys, items)["changed"] is False


def test_check_mode_takes_an_account_not_made_yet(tmp_path, capsys):
    # A role's user/group task does not run in check mode, so on a fresh host the account is not there:
    # check mode reports the item as changing; the real run still refuses it, naming the field.
    (tmp_path / "there").mkdir()
    before = snapshot(tmp_path)
    items = [{"path": str(tmp_path / "new"), "owner": "no-such-user-x", "group": "no-such-group-x", "mode": "0750"},
             {"path": str(tmp_path / "there"), "group": "no-such-group-x"}]
    out = run(capsys, items, check=True, diff=True)
    assert out.get("failed") is not True, out.get("msg")
    assert snapshot(tmp_path) == before
    first, second = out["directories"]
    assert (first["changed"], first["owner"], first["group"], first["mode"]) == (
        True, "no-such-user-x", "no-such-group-x", "0750")
    assert (second["changed"], second["group"], second["gid"]) == (True, "no-such-group-x", None)
    assert out["diff"][1]["after"]["group"] == "no-such-group-x"
    real = run(capsys, items)
    assert real["failed"] is True
    assert real["msg"].startswith("directories[0].owner: no such user 'no-such-user-x'")
    assert snapshot(tmp_path) == before
