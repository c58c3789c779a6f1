"""selfhost.homelab.template / copy: the builtin actions, with an unchanged file checked in one module run.

Every test runs real ansible-playbook on localhost (connection local, pipelining on as the
collection sets it) against files in the test's own directory, and compares with what
ansible.builtin.template / copy do with the same task: the same results, the same files, and
fewer commands on the host when the file is already right. The commands are counted from
ansible-playbook's own -vvv output ("EXEC" lines), sent to stderr.
"""

import json
import os
import stat
import subprocess
import sys

import pytest

BINDIR = os.path.dirname(sys.executable)
# What both actions report for an unchanged file, compared between ours and the builtin.
COMPARED = ("changed", "dest", "path", "checksum", "mode", "owner", "group", "uid", "gid", "size", "state")


def play(tmp_path, tasks, *args, vars_=None):
    """Run the tasks on localhost; return (exit code, task results, EXEC lines, stderr)."""
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "vars": vars_ or {}, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_VERBOSE_TO_STDERR="true",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_PIPELINING="true")
    proc = subprocess.run([os.path.join(BINDIR, "ansible-playbook"), str(book), "-vvv", *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    out = json.loads(proc.stdout)
    results = [t["hosts"]["localhost"] for t in out["plays"][0]["tasks"]]
    execs = [line for line in proc.stderr.splitlines() if "> EXEC " in line]
    return proc.returncode, results, execs, proc.stderr


def tasks_for(prefix, tmp_path, mode="0640", content="hello\n"):
    (tmp_path / "t.j2").write_text("hello {{ who }}\n")
    (tmp_path / "plain.txt").write_text("plain file\n")
    return [
        {"name": "template", prefix + ".template": {"src": str(tmp_path / "t.j2"), "dest": str(tmp_path / "out-t"),
                                                    "mode": mode}, "vars": {"who": "world"}},
        {"name": "copy content", prefix + ".copy": {"content": content, "dest": str(tmp_path / "out-c"),
                                                    "mode": "u=rw,g=r,o="}},
        {"name": "copy src", prefix + ".copy": {"src": str(tmp_path / "plain.txt"), "dest": str(tmp_path / "out-s"),
                                                "mode": mode, "owner": str(os.getuid()), "group": str(os.getgid())}},
    ]


def test_unchanged_file_is_one_module_run_and_reports_as_the_builtin(tmp_path):
    ours, builtin = tmp_path / "ours", tmp_path / "builtin"
    ours.mkdir(), builtin.mkdir()
    rc, first, _execs, err = play(ours, tasks_for("selfhost.homelab", ours))
    assert rc == 0, err
    assert [r["changed"] for r in first] == [True, True, True]
    assert (ours / "out-t").read_text() == "hello world\n"
    assert stat.S_IMODE(os.stat(ours / "out-c").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(ours / "out-s").st_mode) == 0o640

    rc, again, execs, err = play(ours, tasks_for("selfhost.homelab", ours))
    assert rc == 0, err
    assert [r["changed"] for r in again] == [False, False, False]
    # One command per task: the file_state module; no temporary directory (no mkdir, no rm).
    assert len(execs) == 3, execs
    assert not [e for e in execs if "mkdir" in e or "rm -f -r" in e]

    assert play(builtin, tasks_for("ansible.builtin", builtin))[0] == 0
    rc, b_again, b_execs, err = play(builtin, tasks_for("ansible.builtin", builtin))
    assert rc == 0, err
    assert len(b_execs) > 2 * len(execs), b_execs  # the builtin: tmp dir, stat, file, rm per task
    for mine, theirs in zip(again, b_again, strict=True):
        got = {k: mine.get(k) for k in COMPARED}
        want = {k: theirs.get(k) for k in COMPARED}
        for k in ("dest", "path"):
            got[k] = os.path.relpath(got[k], ours)
            want[k] = os.path.relpath(want[k], builtin)
        assert got == want


def test_a_changed_mode_goes_through_the_builtin_and_shows_in_the_diff(tmp_path):
    assert play(tmp_path, tasks_for("selfhost.homelab", tmp_path))[0] == 0
    rc, res, _execs, err = play(tmp_path, tasks_for("selfhost.homelab", tmp_path, mode="0600"), "--diff")
    assert rc == 0, err
    assert [r["changed"] for r in res] == [True, False, True]
    assert stat.S_IMODE(os.stat(tmp_path / "out-t").st_mode) == 0o600
    diff = res[0]["diff"]  # the file module's diff (a dict), as the builtin reports a mode change
    assert diff["before"]["mode"] == "0640" and diff["after"]["mode"] == "0600"


def test_a_changed_content_is_written_with_its_diff_and_check_mode_writes_nothing(tmp_path):
    assert play(tmp_path, tasks_for("selfhost.homelab", tmp_path))[0] == 0
    changed = tasks_for("selfhost.homelab", tmp_path, content="bye\n")
    rc, res, _execs, err = play(tmp_path, changed, "--check", "--diff")
    assert rc == 0, err
    assert [r["changed"] for r in res] == [False, True, False]
    assert "+bye" in res[1]["diff"][0]["after"] or res[1]["diff"][0]["after"] == "bye\n"
    assert (tmp_path / "out-c").read_text() == "hello\n"  # check mode: untouched
    rc, res, _execs, err = play(tmp_path, changed)
    assert rc == 0, err
    assert [r["changed"] for r in res] == [False, True, False]
    assert (tmp_path / "out-c").read_text() == "bye\n"


def test_validate_runs_for_a_change_and_a_refused_file_is_not_written(tmp_path):
    dest = tmp_path / "v.conf"
    dest.write_text("old\n")
    task = {"name": "validated", "selfhost.homelab.copy": {"content": "new\n", "dest": str(dest),
                                                           "validate": "grep -q ^good %s"}}
    rc, res, _execs, _err = play(tmp_path, [task])
    assert rc != 0 and res[0]["failed"]
    assert "failed to validate" in res[0]["msg"]
    assert dest.read_text() == "old\n"
    task["selfhost.homelab.copy"]["content"] = "good\n"
    rc, res, _execs, err = play(tmp_path, [task])
    assert rc == 0 and res[0]["changed"], err
    assert dest.read_text() == "good\n"


@pytest.mark.parametrize("follow", [False, True])
def test_a_link_at_dest_is_handled_as_the_builtin_handles_it(tmp_path, follow):
    results = {}
    for prefix in ("selfhost.homelab", "ansible.builtin"):
        d = tmp_path / prefix
        d.mkdir()
        (d / "target").write_text("same\n")
        os.symlink(d / "target", d / "link")
        task = {"name": "to a link", prefix + ".copy": {"content": "same\n", "dest": str(d / "link"), "follow": follow}}
        rc, res, _execs, err = play(d, [task])
        assert rc == 0, err
        results[prefix] = (res[0]["changed"], os.path.islink(d / "link"), (d / "link").read_text())
    assert results["selfhost.homelab"] == results["ansible.builtin"]
    assert results["selfhost.homelab"][1] is follow  # followed: the link stays; not followed: replaced


def test_force_false_leaves_a_different_file_alone(tmp_path):
    dest = tmp_path / "keep"
    dest.write_text("the owner's\n")
    task = {"name": "no force", "selfhost.homelab.copy": {"content": "ours\n", "dest": str(dest), "force": False}}
    rc, res, _execs, err = play(tmp_path, [task])
    assert rc == 0 and not res[0]["changed"], err
    assert dest.read_text() == "the owner's\n"


def test_an_encrypted_src_is_compared_decrypted(tmp_path):
    secret, password = tmp_path / "secret.txt", tmp_path / "pass"
    password.write_text("test-password\n")
    secret.write_text("s3cret value\n")
    enc = subprocess.run([os.path.join(BINDIR, "ansible-vault"), "encrypt", str(secret), "--vault-password-file",
                          str(password)], capture_output=True, text=True, check=False)
    assert enc.returncode == 0, enc.stderr
    task = {"name": "decrypted", "selfhost.homelab.copy": {"src": str(secret), "dest": str(tmp_path / "plain"),
                                                           "mode": "0600"}, "no_log": True}
    for expected in (True, False):
        rc, res, execs, err = play(tmp_path, [task], "--vault-password-file", str(password))
        assert rc == 0, err
        assert res[0]["changed"] is expected
    assert (tmp_path / "plain").read_text() == "s3cret value\n"
    assert len(execs) == 1
    assert "s3cret" not in err


def test_file_state_alone_changes_nothing_and_names_a_bad_checksum(tmp_path):
    f = tmp_path / "f"
    f.write_text("x\n")
    os.chmod(f, 0o644)
    sha1 = "a2d1d4e2f6a9b8b5b1d0a05f1d3c1c4b9a1d1e3c"  # not the content's
    tasks = [
        {"name": "state", "selfhost.homelab.file_state": {"path": str(f), "checksum": sha1, "mode": "0600"}},
        {"name": "bad", "selfhost.homelab.file_state": {"path": str(f), "checksum": "nope"}, "ignore_errors": True},
    ]
    rc, res, _execs, err = play(tmp_path, tasks)
    assert rc == 0, err
    assert res[0]["changed"] is False and res[0]["matches"] is False and res[0]["content_matches"] is False
    assert res[0]["exists"] is True and res[0]["mode"] == "0644"
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o644
    assert res[1]["failed"] and res[1]["msg"].startswith("checksum: must be a SHA-1 checksum")
