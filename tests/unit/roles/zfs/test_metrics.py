"""The zfs role's textfile metrics script on recorded OpenZFS outputs (healthy and degraded)."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
FIXTURES = os.path.join(REPO, "tests", "unit", "plugins", "modules", "zpool", "fixtures", "bookworm")


@pytest.mark.parametrize("status, health, online", [("status_mirror", "ONLINE", 1),
                                                    ("status_degraded", "DEGRADED", 0)])
def test_metrics_follow_pool_health(tmp_path, status, health, online):
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(os.path.join(REPO, "roles", "zfs", "files", "homelab-zfs-metrics"), lib / "metrics.py")
    shutil.copy(os.path.join(REPO, "plugins", "module_utils", "_zfs_parse.py"), lib / "_zfs_parse.py")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    listing = open(os.path.join(FIXTURES, "list_degraded.txt")).read().replace("DEGRADED", health)
    (tmp_path / "list.txt").write_text(listing)
    fake = bindir / "zpool"
    fake.write_text('#!/bin/sh\ncase "$1" in list) cat %s ;; status) cat %s ;; esac\n'
                    % (tmp_path / "list.txt", os.path.join(FIXTURES, status + ".txt")))
    fake.chmod(0o755)
    out = tmp_path / "zfs.prom"
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]))
    subprocess.run([sys.executable, str(lib / "metrics.py"), str(out)], check=True, env=env)
    text = out.read_text()
    assert 'homelab_zfs_pool_health{pool="tank",state="%s"} 1' % health in text
    assert 'homelab_zfs_pool_online{pool="tank"} %d' % online in text
    assert 'homelab_zfs_pool_fragmentation_ratio{pool="tank"} 0.03' in text
    assert 'homelab_zfs_pool_device_errors{pool="tank",kind="checksum"} 0' in text
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".zfs.prom")], "temp file left behind"
