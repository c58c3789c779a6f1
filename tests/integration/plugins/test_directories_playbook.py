"""selfhost.homelab.directories through real ansible-playbook on localhost, against the test's tmp dir.

Each step is one playbook run; the same items also go through ansible.builtin.file (state=directory, in a
loop) so the resulting directories can be compared with what the file module makes of them.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import subprocess
import sys

import pytest

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Ensure the directories
      selfhost.homelab.directories:
        directories: "{{ items }}"
      register: __result
      ignore_errors: true
"""

FILE_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: The same items, one ansible.builtin.file run each
      ansible.builtin.file:
        path: "{{ item.path }}"
        state: directory
        owner: "{{ item.owner | default(omit) }}"
        group: "{{ item.group | default(omit) }}"
        mode: "{{ item.mode | default(omit) }}"
      loop: "{{ items }}"
"""


def _run(tmp_path, items, *flags, play=PLAY):
    book = tmp_path / "play.yml"
    book.write_text(play)
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_CONNECTION="local")
    bindir = os.path.dirname(sys.executable)
    proc = subprocess.run(
        [os.path.join(bindir, "ansible-playbook"), str(book), "-e", json.dumps({"items": items}), *flags],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def _tree(root):
    """Every directory under root with (mode, uid, gid), to compare whole trees."""
    found = {}
    for base, dirs, _files in os.walk(root):
        for name in dirs:
            full = os.path.join(base, name)
            st = os.lstat(full)
            found[os.path.relpath(full, root)] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return found


@pytest.fixture()
def ids():
    if os.geteuid() != 0:
        pytest.fail("these tests set owners and run as root (as the suite does)")
    return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid


def _items(root):
    return [
        {"path": f"{root}/srv/a", "mode": "0750"},
        {"path": f"{root}/srv/a/b", "owner": "nobody", "group": "nogroup", "mode": "u=rwx,g=rx,o="},
        {"path": f"{root}/srv/a/b/c/d", "mode": 0o700},
    ]


def test_create_rerun_change_one(tmp_path, ids):
    uid, gid = ids
    root = tmp_path / "r"
    items = _items(root)

    first = _run(tmp_path, items)
    assert first.get("failed") is not True, first
    assert first["changed"] is True
    assert [d["changed"] for d in first["directories"]] == [True, True, True]
    assert first["directories"][0]["created"] == [str(root), f"{root}/srv", f"{root}/srv/a"]
    assert first["directories"][2]["created"] == [f"{root}/srv/a/b/c", f"{root}/srv/a/b/c/d"]
    assert stat.S_IMODE(os.stat(root / "srv/a").st_mode) == 0o750
    # Parents this run creates get the item's attributes, as ansible.builtin.file gives them.
    assert stat.S_IMODE(os.stat(root / "srv").st_mode) == 0o750
    b = os.stat(root / "srv/a/b")
    assert (stat.S_IMODE(b.st_mode), b.st_uid, b.st_gid) == (0o750, uid, gid)
    assert stat.S_IMODE(os.stat(root / "srv/a/b/c").st_mode) == 0o700
    assert first["directories"][1]["owner"] == "nobody"
    assert first["directories"][1]["group"] == "nogroup"
    assert first["directories"][1]["mode"] == "0750"

    again = _run(tmp_path, items)
    assert again["changed"] is False
    assert [d["changed"] for d in again["directories"]] == [False, False, False]

    before = _tree(root)
    items[1]["mode"] = "0755"
    changed = _run(tmp_path, items, "--diff")
    assert changed["changed"] is True
    assert [d["changed"] for d in changed["directories"]] == [False, True, False]
    assert changed["diff"] == [{"before": {"path": f"{root}/srv/a/b", "mode": "0750"},
                                "after": {"path": f"{root}/srv/a/b", "mode": "0755"},
                                "before_header": f"{root}/srv/a/b", "after_header": f"{root}/srv/a/b"}]
    after = _tree(root)
    assert {k for k in after if after[k] != before[k]} == {"srv/a/b"}
    assert after["srv/a/b"] == (0o755, uid, gid)


def test_file_in_the_way_fails_before_any_change(tmp_path, ids):
    root = tmp_path / "r"
    (root / "keep").mkdir(parents=True)
    os.chmod(root / "keep", 0o755)
    (root / "blocker").write_text("not a directory\n")
    items = [
        {"path": f"{root}/keep", "mode": "0700"},
        {"path": f"{root}/new"},
        {"path": f"{root}/blocker", "mode": "0755"},
    ]
    result = _run(tmp_path, items)
    assert result["failed"] is True
    assert result["msg"].startswith("directories[2].path: ")
    assert "already exists as a file" in result["msg"]
    assert stat.S_IMODE(os.stat(root / "keep").st_mode) == 0o755
    assert not (root / "new").exists()
    assert (root / "blocker").read_text() == "not a directory\n"

    # A file where a parent should be, an unknown user, a bad mode: same, nothing changed.
    for bad, needle in [
        ({"path": f"{root}/blocker/sub"}, "directories[1].path: cannot create"),
        ({"path": f"{root}/x", "owner": "no-such-user-here"}, "directories[1].owner: no such user"),
        ({"path": f"{root}/x", "group": "no-such-group-here"}, "directories[1].group: no such group"),
        ({"path": f"{root}/x", "mode": "u=rwz"}, "directories[1].mode: "),
        ({"path": "relative/x"}, "directories[1].path: 'relative/x' is not an absolute path"),
    ]:
        result = _run(tmp_path, [items[0], bad])
        assert result["failed"] is True, bad
        assert result["msg"].startswith(needle), result["msg"]
        assert stat.S_IMODE(os.stat(root / "keep").st_mode) == 0o755
        assert not (root / "x").exists()


def test_check_mode_changes_nothing(tmp_path, ids):
    root = tmp_path / "r"
    (root / "there").mkdir(parents=True)
    os.chmod(root / "there", 0o755)
    items = [{"path": f"{root}/there", "mode": "0700", "owner": "nobody"}, {"path": f"{root}/new/deep", "mode": "0750"}]
    before = _tree(root)
    result = _run(tmp_path, items, "--check", "--diff")
    assert result["changed"] is True
    assert [d["changed"] for d in result["directories"]] == [True, True]
    assert result["directories"][0]["mode"] == "0700"
    assert result["directories"][0]["owner"] == "nobody"
    assert result["directories"][1]["created"] == [f"{root}/new", f"{root}/new/deep"]
    assert result["directories"][1]["mode"] == "0750"
    assert result["diff"][1]["before"] == {"path": f"{root}/new/deep", "state": "absent"}
    assert result["diff"][1]["after"] == {"path": f"{root}/new/deep", "state": "directory", "mode": "0750"}
    assert _tree(root) == before
    assert not (root / "new").exists()


def test_same_directories_as_ansible_builtin_file(tmp_path, ids):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    for root in (mine, theirs):
        root.mkdir()
        (root / "pre").mkdir()
        os.chmod(root / "pre", 0o777)
        (root / "tolink").mkdir()
        os.symlink(root / "tolink", root / "link")
        os.chmod(root / "tolink", 0o700)

    def items(root):
        return _items(root) + [
            {"path": f"{root}/pre", "mode": "go-w"},
            {"path": f"{root}/link", "mode": "0751", "group": "nogroup"},
            {"path": f"{root}/sym/x", "mode": "a+rX,u+w"},
        ]

    result = _run(tmp_path, items(mine))
    assert result["changed"] is True, result
    file_result = _run(tmp_path, items(theirs), play=FILE_PLAY)
    assert file_result["changed"] is True, file_result
    assert _tree(mine) == _tree(theirs)
    assert os.path.islink(mine / "link")
    assert result["directories"][4]["dest"] == f"{mine}/tolink"
    # And each says "unchanged" to what the other made.
    assert _run(tmp_path, items(theirs))["changed"] is False
    assert _run(tmp_path, items(mine), play=FILE_PLAY)["changed"] is False
