"""Record the restic outputs the unit tests replay, from the real binaries.

Run after bootstrap (it needs /usr/bin/restic and the trixie restic that
scripts/bootstrap.d/restic.sh unpacks):
    python tests/unit/plugins/modules/restic_repo/record_fixtures.py
Writes fixtures/<version>/<name>.{out,err,rc} for each scenario. Not part of
the test run; the recorded files are committed.
"""

import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("HOMELAB_CACHE", os.path.expanduser("~/.cache/selfhost-homelab"))
BINARIES = {"0.14": "/usr/bin/restic", "0.18": os.path.join(CACHE, "restic/bin/restic-trixie")}
WORK = "/var/tmp/restic-fixture"


def record(version, name, argv, env, stdin=None):
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, input=stdin, check=False)
    out = os.path.join(HERE, "fixtures", version)
    os.makedirs(out, exist_ok=True)
    for ext, text in (("out", proc.stdout), ("err", proc.stderr), ("rc", str(proc.returncode))):
        with open(os.path.join(out, "%s.%s" % (name, ext)), "w") as f:
            f.write(text)
    return proc


def main():
    for version, binary in BINARIES.items():
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK + "/src/data")
        with open(WORK + "/src/data/a.txt", "w") as f:
            f.write("hello\n")
        repo = WORK + "/repo"
        env = dict(os.environ, RESTIC_PASSWORD="correct horse", RESTIC_CACHE_DIR=WORK + "/cache")
        r = [binary, "-r", repo]
        record(version, "version", [binary, "version"], env)
        record(version, "probe_no_repo", r + ["--no-lock", "cat", "config"], env)
        record(version, "init", r + ["init"], env)
        record(version, "probe_ok", r + ["--no-lock", "cat", "config"], env)
        bad = dict(env, RESTIC_PASSWORD="wrong")
        record(version, "probe_wrong_password", r + ["--no-lock", "cat", "config"], bad)
        src = WORK + "/src/data"
        record(version, "backup_dry_run_new", r + ["backup", "--json", "--quiet", "--dry-run", "--", src], env)
        record(version, "backup_new", r + ["backup", "--json", "--quiet", "--", src], env)
        time.sleep(1)
        record(version, "backup_dry_run_unchanged", r + ["backup", "--json", "--quiet", "--dry-run", "--", src], env)
        if version != "0.14":
            skip = ["backup", "--json", "--quiet", "--skip-if-unchanged", "--", src]
            record(version, "backup_skipped", r + skip, env)
        with open(WORK + "/src/data/b.txt", "w") as f:
            f.write("more\n")
        record(version, "backup_changed", r + ["backup", "--json", "--quiet", "--", src], env)
        record(version, "snapshots", r + ["--no-lock", "snapshots", "--json"], env)
        record(version, "forget_dry_run", r + ["--no-lock", "forget", "--json", "--keep-last", "1", "--dry-run"], env)
        record(version, "check", r + ["check"] + (["--json"] if version != "0.14" else []), env)
        # A lock held by a running backup (stdin never closes until we stop it).
        holder = subprocess.Popen(r + ["backup", "--stdin", "--quiet"], env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        record(version, "prune_locked", r + ["prune"], env)
        holder.stdin.close()
        holder.wait()
        record(version, "list_locks_none", r + ["--no-lock", "list", "locks"], env)
    shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
