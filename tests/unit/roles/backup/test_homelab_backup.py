"""The backup program's pure parts: config validation, credentials, metrics text, atomic writes, the lock."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import random

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
_spec = importlib.util.spec_from_file_location("homelab_backup",
                                               os.path.join(REPO, "roles", "backup", "files", "homelab_backup.py"))
prog = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prog)


@pytest.fixture
def cfg(tmp_path):
    return {
        "set": "apps",
        "sources": [{"path": str(tmp_path)}],
        "repositories": [
            {"name": "b2", "url": "b2:bucket:box", "options": {"b2.connections": "20"},
             "env": {"B2_ACCOUNT_ID": "B2_B2_ACCOUNT_ID", "B2_ACCOUNT_KEY": "B2_B2_ACCOUNT_KEY"}},
            {"name": "usb", "url": "/mnt/usb/restic"},
        ],
        "forget_args": ["--keep-daily", "7"],
        "textfile_dir": str(tmp_path / "textfile"),
        "state_dir": str(tmp_path / "state"),
        "scratch_dir": str(tmp_path / "scratch"),
    }


@pytest.mark.parametrize("change, message", [
    ({"set": "Apps"}, "set: 'Apps' is not a valid backup set name"),
    ({"sources": []}, "sources: at least one source path is required"),
    ({"sources": [{"path": "relative"}]}, "sources[0].path must be an absolute path"),
    ({"sources": [{"path": "/x", "dataset": "tank/apps@snap"}]}, "sources[0].dataset must be a ZFS dataset name"),
    ({"repositories": []}, "repositories: at least one repository is required"),
    ({"repositories": [{"name": "x", "url": "ftp://nas/b"}]},
     "repository URL 'ftp://nas/b' has an unknown scheme; known: an absolute local path, b2:, s3:, rest:, sftp:"),
    ({"repositories": [{"name": "x", "url": "rest:https://u:secretpw@nas:8000/r"}, {"name": "x", "url": "/r"}]},
     "repositories[1].name 'x' is used twice"),
    ({"repositories": [{"name": "x", "url": "/r", "env": {"AWS_ACCESS_KEY_ID": "K"}}]},
     "repositories[0].env: AWS_ACCESS_KEY_ID is not a credential of a local repository"),
    ({"forget_args": []}, "forget_args: the retention policy keeps nothing"),
    ({"forget_args": ["--prune"]}, "forget_args: no --keep-* rule"),
    ({"textfile_dir": "relative"}, "textfile_dir must be an absolute path"),
    ({"drill_sample": 0}, "drill_sample must be a whole number of at least 1"),
])
def test_validate_names_the_field(cfg, change, message):
    cfg.update(change)
    with pytest.raises(prog.Failure) as exc:
        prog.validate(cfg)
    assert exc.value.code == prog.EXIT_CONFIG
    assert message in str(exc.value)


def test_rest_password_is_masked():
    with pytest.raises(prog.Failure) as exc:
        prog.scheme("rsync://u:pw@h/x")
    assert prog.mask("rest:https://backup:hunter2@nas:8000/repo/") == "rest:https://backup:********@nas:8000/repo/"
    assert "rsync://u:pw@h/x" in str(exc.value)


def test_missing_source_is_a_config_error(cfg, tmp_path):
    cfg["sources"].append({"path": str(tmp_path / "missing")})
    prog.validate(cfg)
    with pytest.raises(prog.Failure) as exc:
        prog.check_sources(cfg)
    assert exc.value.code == prog.EXIT_CONFIG and "sources[1].path %s does not exist" % (tmp_path / "missing") \
        in str(exc.value)


def test_repo_env_maps_credentials_and_drops_the_rest(cfg):
    prog.validate(cfg)
    environ = {"PATH": "/usr/bin", "RESTIC_PASSWORD": "pw", "B2_B2_ACCOUNT_ID": "id", "B2_B2_ACCOUNT_KEY": "key",
               "AWS_SECRET_ACCESS_KEY": "stray", "RESTIC_REPOSITORY": "/elsewhere"}
    env = prog.repo_env(cfg, cfg["repositories"][0], environ)
    assert env == {"PATH": "/usr/bin", "RESTIC_REPOSITORY": "b2:bucket:box", "RESTIC_PASSWORD": "pw",
                   "B2_ACCOUNT_ID": "id", "B2_ACCOUNT_KEY": "key"}
    del environ["B2_B2_ACCOUNT_KEY"]
    with pytest.raises(prog.Failure) as exc:
        prog.repo_env(cfg, cfg["repositories"][0], environ)
    assert "repository b2: B2_ACCOUNT_KEY: the environment has no B2_B2_ACCOUNT_KEY" in str(exc.value)
    with pytest.raises(prog.Failure) as exc:
        prog.repo_env(cfg, cfg["repositories"][1], {"PATH": "/usr/bin"})
    assert "repository usb: no password" in str(exc.value)


def test_metrics_text_and_atomic_write(cfg, tmp_path):
    prog.validate(cfg)
    state = {"b2": {"backup": {"last_success": 100, "last_run": 200, "success": 0, "size_bytes": 5,
                               "duration": 1.23456},
                    "drill": {"success": 1}},
             "usb": {"backup": {"last_success": 150, "last_run": 150, "success": 1}}}
    text = prog.render_metrics(cfg, state)
    assert 'homelab_backup_last_success_timestamp_seconds{set="apps",repository="b2"} 100\n' in text
    assert 'homelab_backup_last_run_success{set="apps",repository="b2"} 0\n' in text
    assert 'homelab_backup_last_run_success{set="apps",repository="usb"} 1\n' in text
    assert 'homelab_backup_duration_seconds{set="apps",repository="b2"} 1.235\n' in text
    assert 'homelab_restore_drill_success{set="apps",repository="b2"} 1\n' in text
    assert "homelab_restore_drill_success{set=\"apps\",repository=\"usb\"}" not in text
    assert text.count("# TYPE homelab_backup_last_run_success gauge") == 1
    prog.write_metrics(cfg, state)
    files = os.listdir(cfg["textfile_dir"])
    assert files == ["homelab_backup_apps.prom"], "a temporary file was left behind"
    assert oct(os.stat(os.path.join(cfg["textfile_dir"], files[0])).st_mode & 0o777) == "0o644"


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "x.prom"
    target.write_text("old\n")

    def boom(*_a):
        raise OSError("disk full")

    monkeypatch.setattr(prog.os, "replace", boom)
    with pytest.raises(OSError):
        prog.atomic_write(str(target), "new\n")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["x.prom"]


def test_lock_is_exclusive_per_set(cfg):
    prog.validate(cfg)
    with prog.Lock(cfg, 0):
        with pytest.raises(prog.Failure) as exc:
            with prog.Lock(cfg, 0):
                pass
        assert exc.value.code == prog.EXIT_LOCKED and "another run holds the lock" in str(exc.value)
        other = copy.deepcopy(cfg)
        other["set"] = "etc"
        with prog.Lock(other, 0):
            pass
    with prog.Lock(cfg, 0):
        pass


def test_sample_skips_links_globs_and_excludes(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.tmp", "odd[1].jpg"):
        (tmp_path / name).write_text(name)
    (tmp_path / "link.jpg").symlink_to(tmp_path / "a.jpg")
    out = prog.sample_files([str(tmp_path)], ["*.tmp"], 10, random.Random(1))
    assert [os.path.basename(f["path"]) for f in out] == ["a.jpg", "b.jpg"]
    assert out[0]["sha256"] == prog.sha256(str(tmp_path / "a.jpg")) and out[0]["size"] == 5
    many = [str(tmp_path)]
    for i in range(30):
        (tmp_path / ("f%02d.dat" % i)).write_text(str(i))
    assert len(prog.sample_files(many, [], 7, random.Random(2))) == 7


def test_main_exit_codes(tmp_path, cfg, caplog):
    path = tmp_path / "cfg.json"
    path.write_text("{not json")
    assert prog.main(["backup", "--config", str(path)]) == prog.EXIT_CONFIG
    cfg["repositories"] = [{"name": "x", "url": "gopher://x"}]
    path.write_text(json.dumps(cfg))
    assert prog.main(["validate", "--config", str(path)]) == prog.EXIT_CONFIG
    assert "unknown scheme" in caplog.text
    cfg["repositories"] = [{"name": "x", "url": "/r"}]
    path.write_text(json.dumps(cfg))
    assert prog.main(["validate", "--config", str(path)]) == prog.EXIT_OK
