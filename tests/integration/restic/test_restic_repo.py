"""restic_repo against real restic 0.14 and 0.18 on local, sftp, rest-server and S3 (moto) repositories."""

import filecmp
import os
import signal
import subprocess
import sys
import time

import pytest
from restic_it import PASSWORD, REPO_ROOT, S3_SECRET, module_env, write_tree


def _init(repo):
    result = repo.run(action="init")
    assert not result.get("failed"), result.get("msg")
    return result


def test_init_twice_and_wrong_password(repo):
    """init: check mode creates nothing; twice -> second unchanged; a wrong password fails and touches nothing."""
    check = repo.run(action="init", check_mode=True)
    assert check["changed"] is True and check["initialized"] is True
    if repo.local_path is not None:
        assert not os.path.exists(os.path.join(repo.local_path, "config")), "check mode created the repository"
    else:
        assert repo.fingerprint() == {}, "check mode created the repository"
    first = _init(repo)
    assert first["changed"] is True and first["config"]["id"]
    second = _init(repo)
    assert second["changed"] is False and second["initialized"] is False
    assert second["config"]["id"] == first["config"]["id"]
    write_tree(repo.src)
    assert repo.run(action="backup", paths=[repo.src])["changed"] is True
    before = repo.fingerprint()
    for action in ("init", "backup"):
        result = repo.run(action=action, paths=[repo.src], password="not-the-password-x")
        assert result.get("failed") is True
        assert result["error_kind"] == "wrong_password", result["msg"]
        assert "wrong password" in result["msg"]
        assert [c for c in result["commands"] if "init" in c] == [], "a wrong password led to an init"
    assert repo.fingerprint() == before


def test_backup_restore_forget(repo):
    """backup twice -> second unchanged; restore -> identical bytes; forget in check mode deletes nothing."""
    _init(repo)
    write_tree(repo.src, seed=1)
    empty = repo.fingerprint()
    check = repo.run(action="backup", paths=[repo.src], check_mode=True)
    assert check["changed"] is True
    assert repo.fingerprint() == empty, "check mode wrote to the repository"
    first = repo.run(action="backup", paths=[repo.src], tags=["it"], exclude=["*.tmp"])
    assert first["changed"] is True and first["snapshot_id"]
    second = repo.run(action="backup", paths=[repo.src], tags=["it"], exclude=["*.tmp"])
    assert second["changed"] is False, second["summary"]
    assert second["snapshot_id"] is None
    snaps = repo.run(action="snapshots", tags=["it"])["snapshots"]
    assert len(snaps) == 1, "an unchanged backup wrote a snapshot"
    # restore -> identical bytes
    target = os.path.join(repo.work, "restore")
    restored = repo.run(action="restore", target=target, paths=[repo.src])
    assert restored["changed"] is True, restored.get("msg")
    copy = os.path.join(target, repo.src.lstrip("/"))
    cmp = filecmp.dircmp(repo.src, copy)
    assert not (cmp.left_only or cmp.right_only or cmp.diff_files)
    for rel in ("hello.txt", "nested/blob.bin", "nested/deeper/notes.md"):
        with open(os.path.join(repo.src, rel), "rb") as a, open(os.path.join(copy, rel), "rb") as b:
            assert a.read() == b.read(), rel
    assert os.readlink(os.path.join(copy, "link")) == "hello.txt"
    # a second snapshot, then forget: check mode first
    write_tree(repo.src, seed=2)
    assert repo.run(action="backup", paths=[repo.src], tags=["it"])["changed"] is True
    before = repo.fingerprint()
    check = repo.run(action="forget", retention={"keep_last": 1}, prune=True, check_mode=True, diff=True)
    assert check["changed"] is True and len(check["removed"]) == 1 and len(check["kept"]) == 1
    assert check["removed"][0]["id"].startswith(first["snapshot_id"])
    assert len(check["diff"]["before"]["snapshots"]) == 2 and len(check["diff"]["after"]["snapshots"]) == 1
    assert repo.fingerprint() == before, "check mode changed the repository"
    real = repo.run(action="forget", retention={"keep_last": 1}, prune=True)
    assert real["changed"] is True and real["pruned"] is True
    assert real["removed"][0]["id"] == check["removed"][0]["id"]
    assert repo.fingerprint() != before


def test_verify_check_and_forget_idempotent(local_repo):
    """Restore drill: equal now; a changed source byte is caught. check with a data subset; forget twice."""
    repo = local_repo
    _init(repo)
    write_tree(repo.src, seed=1)
    assert repo.run(action="backup", paths=[repo.src])["changed"] is True
    verify = repo.run(action="verify", paths=[repo.src])
    assert verify["verify"]["ok"] is True and verify["verify"]["files_compared"] == 3
    with open(os.path.join(repo.src, "nested", "blob.bin"), "r+b") as f:
        f.write(b"X")
    bad = repo.run(action="verify", paths=[repo.src])
    assert bad.get("failed") is True
    assert bad["verify"]["differ"] == [os.path.join(repo.src, "nested", "blob.bin")]
    assert repo.run(action="backup", paths=[repo.src])["changed"] is True
    assert repo.run(action="forget", retention={"keep_last": 1})["changed"] is True
    again = repo.run(action="forget", retention={"keep_last": 1}, prune=True)
    assert again["changed"] is False and again["removed"] == [] and again["pruned"] is False
    result = repo.run(action="check", read_data_subset="1/2")
    assert result["check"]["ok"] is True and result["check"]["read_data_subset"] == "1/2", result.get("msg")


# --- exit-code detection (0.17+) and the 0.14 fallback, on the real binaries ----------


def test_detection_no_repository(local_repo):
    write_tree(local_repo.src)
    result = local_repo.run(action="backup", paths=[local_repo.src])
    assert result["failed"] is True and result["error_kind"] == "no_repository", result["msg"]
    assert result["rc"] == (10 if local_repo.version == "0.18" else 1)
    assert not os.path.exists(local_repo.local_path)


def test_detection_wrong_password_rc(local_repo):
    _init(local_repo)
    result = local_repo.run(action="init", password="not-the-password-x")
    assert result["error_kind"] == "wrong_password"
    assert result["rc"] == (12 if local_repo.version == "0.18" else 1)
    assert len(result["commands"]) == 1  # the probe only


def test_detection_locked_and_unlock(local_repo, lock_holder):
    _init(local_repo)
    holder = lock_holder(local_repo)
    result = local_repo.run(action="check")
    assert result.get("failed") is True and result["error_kind"] == "locked", result["msg"]
    assert result["rc"] == (11 if local_repo.version == "0.18" else 1)
    assert "action=unlock" in result["msg"]
    # A live lock is not stale: unlock (without remove_all_locks) keeps it.
    kept = local_repo.run(action="unlock")
    assert kept["changed"] is False and len(kept["locks_after"]) == 1
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    check = local_repo.run(action="unlock", check_mode=True)
    assert check["changed"] is True and len(os.listdir(os.path.join(local_repo.local_path, "locks"))) == 1
    unlocked = local_repo.run(action="unlock")
    assert unlocked["changed"] is True and unlocked["locks_after"] == []
    assert local_repo.run(action="unlock")["changed"] is False


def test_interrupted_backup_next_run_succeeds(local_repo):
    _init(local_repo)
    # Enough data that the backup is still running when it is killed.
    for i in range(24):
        with open(os.path.join(local_repo.src, "f%02d.bin" % i), "wb") as f:
            f.write(os.urandom(2 * 1024 * 1024))
    proc = local_repo.start({"action": "backup", "paths": [local_repo.src]})
    data = os.path.join(local_repo.local_path, "data")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if any(walked[2] for walked in os.walk(data)):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the backup finished before it could be interrupted; give it more data"
    os.killpg(proc.pid, signal.SIGKILL)  # the module and restic with it
    proc.wait()
    assert local_repo.run(action="snapshots")["snapshots"] == []
    result = local_repo.run(action="backup", paths=[local_repo.src])
    assert result["changed"] is True and result["snapshot_id"], result.get("msg")
    # The killed restic left its lock behind; removing stale locks is opt-in.
    locked = local_repo.run(action="check")
    assert locked.get("failed") is True and locked["error_kind"] == "locked", locked.get("msg")
    check = local_repo.run(action="check", unlock_stale=True)
    assert check.get("failed") is not True and check["check"]["ok"] is True, check.get("msg")


@pytest.mark.parametrize("version", ["0.14"], indirect=True)
def test_no_secret_in_playbook_output_with_vvv(local_repo):
    """The password and S3 secret stay out of -vvv output, even when a task fails."""
    write_tree(local_repo.src)
    playbook = os.path.join(local_repo.work, "play.yml")
    with open(playbook, "w") as f:
        f.write(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            "    - selfhost.homelab.restic_repo:\n"
            "        repository: %s\n        binary: %s\n        password: %s\n"
            "        aws_secret_access_key: %s\n"
            "    - selfhost.homelab.restic_repo:\n"
            "        repository: %s\n        binary: %s\n        password: %s\n"
            "        action: backup\n        paths: [%s]\n"
            "    - selfhost.homelab.restic_repo:\n"
            "        repository: %s\n        binary: %s\n        password: wrong-%s\n"
            "      ignore_errors: true\n"
            % (local_repo.local_path, local_repo.binary, PASSWORD, S3_SECRET,
               local_repo.local_path, local_repo.binary, PASSWORD, local_repo.src,
               local_repo.local_path, local_repo.binary, PASSWORD)
        )
    env = module_env()
    env["ANSIBLE_CONFIG"] = os.path.join(REPO_ROOT, "ansible.cfg")
    playbook_bin = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    cmd = [playbook_bin, "-vvv", "-i", "localhost,", "-c", "local", "--diff",
           "-e", "ansible_python_interpreter=%s" % sys.executable, playbook]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "wrong password" in output
    assert PASSWORD not in output and S3_SECRET not in output
