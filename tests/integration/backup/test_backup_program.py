"""The backup role's program (roles/backup/files/homelab_backup.py) with real restic 0.14 and 0.18,
on a local repository and on S3 (moto on loopback): backup, restore drill, retention, a corrupted pack."""

import os
import time

import pytest
from backup_it import hold_lock
from restic_it import BINARIES

VERSIONS = sorted(BINARIES)
MONITORING_FIXTURE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "monitoring", "fixtures", "textfile", "backup.prom")


def monitoring_fixture_names():
    with open(MONITORING_FIXTURE) as fh:
        return {line.split("{")[0].split()[0] for line in fh if line.strip() and not line.startswith("#")}


@pytest.mark.parametrize("backend", ["local", "s3"])
@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: "restic" + v)
def test_backup_drill_then_corrupt_pack(backup_set, version, backend):
    """backup -> metrics; drill passes; a second backup + retention keeps one; one corrupt pack -> drill fails."""
    bset = backup_set(version, [backend])
    bset.init()
    repo = bset.repos[0]
    rname = repo["name"]
    before = time.time()
    first = bset.run("backup")
    assert first.returncode == 0, first.stderr
    assert "backup %s: done" % bset.name in first.stderr
    metrics = bset.metrics()
    assert metrics[("homelab_backup_last_run_success", rname)] == 1
    assert metrics[("homelab_backup_last_success_timestamp_seconds", rname)] >= int(before)
    assert metrics[("homelab_backup_size_bytes", rname)] >= 384 * 1024
    assert metrics[("homelab_backup_files", rname)] == 4  # hello.txt, notes.md, blob.bin, photo.raw (not *.tmp)
    snaps = bset.restic(repo, "snapshots", "--json", "--tag", "homelab-backup-" + bset.name)
    assert snaps.returncode == 0 and snaps.stdout.count('"short_id"') == 1

    drill = bset.run("drill")
    assert drill.returncode == 0, drill.stderr
    assert "every checksum matches" in drill.stderr
    metrics = bset.metrics()
    assert metrics[("homelab_restore_drill_success", rname)] == 1
    assert metrics[("homelab_restore_drill_files_verified", rname)] == 4
    assert not os.listdir(bset.config["scratch_dir"]), "the drill left its scratch directory behind"
    # The monitoring role's rules and dashboards read the names in its textfile fixture: the program writes each.
    assert monitoring_fixture_names() <= {name for name, _repo in metrics}

    with open(os.path.join(bset.src, "hello.txt"), "a") as fh:
        fh.write("changed\n")
    second = bset.run("backup")
    assert second.returncode == 0, second.stderr
    forget = bset.run("forget")
    assert forget.returncode == 0, forget.stderr
    assert "kept 1 and removed 1" in forget.stderr
    assert bset.metrics()[("homelab_backup_snapshots", rname)] == 1
    assert bset.metrics()[("homelab_backup_retention_last_run_success", rname)] == 1

    bset.corrupt_largest_pack(repo)
    broken = bset.run("drill")
    assert broken.returncode == 5, broken.stderr
    assert "FAILED" in broken.stderr and "photo.raw" in broken.stderr
    metrics = bset.metrics()
    assert metrics[("homelab_restore_drill_success", rname)] == 0
    assert metrics[("homelab_restore_drill_last_success_timestamp_seconds", rname)] < \
        metrics[("homelab_restore_drill_last_run_timestamp_seconds", rname)] + 1
    # the backup metrics are kept as they were: a failed drill does not reset the backup's age
    assert metrics[("homelab_backup_last_run_success", rname)] == 1


def test_two_repositories_3_2_1(backup_set):
    """One set, a local disk and S3 off-site: one snapshot in each, a drill per repository."""
    bset = backup_set(VERSIONS[-1], ["local", "s3"])
    bset.init()
    assert bset.run("backup").returncode == 0
    drill = bset.run("drill")
    assert drill.returncode == 0, drill.stderr
    metrics = bset.metrics()
    for name in ("local", "offsite"):
        assert metrics[("homelab_backup_last_run_success", name)] == 1
        assert metrics[("homelab_restore_drill_success", name)] == 1


def test_one_repository_down_fails_the_run_and_says_which(backup_set):
    bset = backup_set(VERSIONS[0], ["local", "s3"])
    bset.init()
    bset.repos[1]["url"] = bset.repos[1]["url"] + "-never-initialised"
    bset.write_config(repositories=bset.repos)
    proc = bset.run("backup")
    assert proc.returncode == 3, proc.stderr
    assert "repository offsite" in proc.stderr and "backup failed" in proc.stderr
    metrics = bset.metrics()
    assert metrics[("homelab_backup_last_run_success", "local")] == 1
    assert metrics[("homelab_backup_last_run_success", "offsite")] == 0
    assert ("homelab_backup_last_success_timestamp_seconds", "offsite") not in metrics


def test_bad_input_changes_nothing(backup_set):
    """A missing source path, an unknown URL scheme, a policy that keeps nothing: exit 2, nothing written."""
    bset = backup_set(VERSIONS[0], ["local"])
    bset.init()
    before = bset.objects(bset.repos[0])

    bset.write_config(sources=[{"path": bset.src}, {"path": bset.src + "-missing"}])
    proc = bset.run("backup")
    assert proc.returncode == 2
    assert "sources[1].path %s-missing does not exist" % bset.src in proc.stderr

    bset.write_config(sources=[{"path": bset.src}],
                      repositories=bset.repos + [{"name": "ftp", "url": "ftp://nas.example/backup"}])
    proc = bset.run("backup")
    assert proc.returncode == 2
    assert "repository URL 'ftp://nas.example/backup' has an unknown scheme" in proc.stderr

    bset.write_config(repositories=bset.repos[:1], forget_args=[])
    for command in ("backup", "forget"):
        proc = bset.run(command)
        assert proc.returncode == 2
        assert "retention policy keeps nothing" in proc.stderr

    bset.write_config(forget_args=["--keep-last", "1"])
    proc = bset.run("backup", env={})
    assert proc.returncode == 2
    assert "no password: the environment has no RESTIC_PASSWORD" in proc.stderr

    assert bset.objects(bset.repos[0]) == before, "bad input changed the repository"
    assert not os.path.exists(bset.textfile_dir), "bad input wrote metrics"


def test_lock_prevents_overlap(backup_set):
    bset = backup_set(VERSIONS[-1], ["local"])
    bset.init()
    holder = hold_lock(bset)
    try:
        proc = bset.run("backup")
        assert proc.returncode == 6
        assert "another run holds the lock" in proc.stderr
        started = time.monotonic()
        proc = bset.run("drill", "--lock-wait", "2")
        assert proc.returncode == 6 and time.monotonic() - started >= 2
    finally:
        holder.close()
    assert bset.run("backup").returncode == 0


def test_drill_without_recorded_checksums_fails_visibly(backup_set):
    """A snapshot written by something else has no recorded checksums: the drill fails, it never passes blind."""
    bset = backup_set(VERSIONS[-1], ["local"])
    bset.init()
    assert bset.run("backup").returncode == 0
    repo = bset.repos[0]
    other = bset.restic(repo, "backup", "--host", "it-host", "--tag", "homelab-backup-" + bset.name, bset.src)
    assert other.returncode == 0, other.stderr
    proc = bset.run("drill")
    assert proc.returncode == 5
    assert "no checksums recorded for the latest snapshot" in proc.stderr
    assert bset.metrics()[("homelab_restore_drill_success", "local")] == 0


ZFS_FAKE = r"""#!/bin/sh
# A stand-in for zfs(8) that logs its calls; snapshots are copies under <mountpoint>/.zfs/snapshot.
echo "$*" >> "$ZFS_LOG"
case "$1" in
  get) echo "$ZFS_MOUNT" ;;
  list) [ -d "$ZFS_MOUNT/.zfs/snapshot/${2#*@}" ] || [ -d "$ZFS_MOUNT/.zfs/snapshot/${6#*@}" ] ;;
  snapshot) mkdir -p "$ZFS_MOUNT/.zfs/snapshot" && cp -a "$ZFS_MOUNT/data" "$ZFS_MOUNT/.zfs/snapshot/${2#*@}" ;;
  destroy) rm -rf "$ZFS_MOUNT/.zfs/snapshot/${2#*@}" ;;
esac
"""


def test_dataset_source_is_backed_up_from_its_snapshot(backup_set, tmp_path):
    """A dataset source: snapshot first, back up .zfs/snapshot/<name>, release it (zfs itself is a stand-in here;
    the program's calls are what is checked: get mountpoint, list, snapshot, destroy)."""
    bset = backup_set(VERSIONS[-1], ["local"])
    bset.init()
    fake = tmp_path / "zfs"
    fake.write_text(ZFS_FAKE)
    fake.chmod(0o755)
    mount = os.path.dirname(bset.src)  # <work>/src, holding data/
    log = tmp_path / "zfs.log"
    bset.write_config(zfs=str(fake), sources=[{"path": mount, "dataset": "tank/apps/it"}])
    env = dict(bset.env, ZFS_LOG=str(log), ZFS_MOUNT=mount)
    proc = bset.run("backup", env=env)
    assert proc.returncode == 0, proc.stderr
    snap = "homelab-backup-" + bset.name
    calls = log.read_text().splitlines()
    assert calls[0] == "get -H -o value mountpoint tank/apps/it"
    assert "snapshot tank/apps/it@%s" % snap in calls
    assert calls[-1] == "destroy tank/apps/it@%s" % snap
    assert not os.path.exists(os.path.join(mount, ".zfs", "snapshot", snap)), "the snapshot was not released"
    listing = bset.restic(bset.repos[0], "snapshots", "--json")
    assert "/.zfs/snapshot/%s" % snap in listing.stdout
    drill = bset.run("drill", env=env)
    assert drill.returncode == 0, drill.stderr


def test_failed_snapshot_fails_the_run_and_the_metric(backup_set, tmp_path):
    """zfs snapshot fails: exit 7, no restic run, the metric says the last run failed."""
    bset = backup_set(VERSIONS[-1], ["local"])
    bset.init()
    assert bset.run("backup").returncode == 0
    fake = tmp_path / "zfs"
    fake.write_text("#!/bin/sh\ncase \"$1\" in get) echo \"$ZFS_MOUNT\" ;; list) exit 1 ;; "
                    "snapshot) echo \"cannot create snapshot: out of space\" >&2; exit 1 ;; esac\n")
    fake.chmod(0o755)
    bset.write_config(zfs=str(fake), sources=[{"path": bset.src, "dataset": "tank/apps/it"}])
    proc = bset.run("backup", env=dict(bset.env, ZFS_MOUNT=os.path.dirname(bset.src)))
    assert proc.returncode == 7, proc.stderr
    assert "zfs snapshot tank/apps/it@homelab-backup-%s failed: cannot create snapshot: out of space" % bset.name \
        in proc.stderr
    assert bset.metrics()[("homelab_backup_last_run_success", "local")] == 0
