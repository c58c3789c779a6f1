#!/usr/bin/env python
"""restic_repo's cost over plain restic: the same data, the same run, side by side.

For each restic version (Debian 12's 0.14 and trixie's 0.18), two fresh local
repositories get the same three backups of a generated data set: first
(everything new), incremental (a tenth of the files changed) and unchanged.
One repository is backed up by `restic backup` itself, the other through the
module (run as Ansible runs it: a Python process reading its arguments). The
table shows wall-clock seconds (mean of two runs each, in ABBA order) and the
module's overhead in percent.

Not a test: run it by hand after scripts/bootstrap.sh, in the venv:
    source scripts/lib.sh && activate_env && python benchmarks/restic/bench_backup.py [--size-mb 512] [--json]
(--json prints the rows as JSON for benchmarks/run.py instead of the table.)
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("HOMELAB_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "selfhost-homelab"))
BINARIES = {"0.14": "/usr/bin/restic", "0.18": os.path.join(CACHE, "restic", "bin", "restic-trixie")}
WORK = "/var/tmp/selfhost-homelab-restic-bench"
PASSWORD = "bench-password"


def generate(root, size_mb, files):
    os.makedirs(root)
    per_file = size_mb * 1024 * 1024 // files
    for i in range(files):
        sub = os.path.join(root, "d%02d" % (i % 16))
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, "f%04d.bin" % i), "wb") as f:
            f.write(os.urandom(per_file))
    for i in range(500):  # many small files, as in an app's config and metadata
        with open(os.path.join(root, "d%02d" % (i % 16), "small%04d.txt" % i), "w") as f:
            f.write("small file %d\n" % i * 20)


def change_tenth(root, files):
    for i in range(0, files, 10):
        with open(os.path.join(root, "d%02d" % (i % 16), "f%04d.bin" % i), "r+b") as f:
            f.write(os.urandom(4096))


def timed(cmd, env):
    os.sync()  # earlier writes must not be flushed on this command's clock
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit("failed: %s\n%s\n%s" % (" ".join(cmd), proc.stdout[-2000:], proc.stderr[-2000:]))
    return elapsed, proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    data = os.path.join(WORK, "src", "data")
    generate(data, args.size_mb, args.files)
    env = dict(os.environ, RESTIC_PASSWORD=PASSWORD)
    env["PYTHONPATH"] = os.path.join(REPO_ROOT, ".cache", "collections")
    rows = []
    for version, binary in BINARIES.items():
        # Two repositories each, run in the order plain, module, module, plain
        # (ABBA) for every phase: the disk gets slower as a run goes on (page
        # cache, writeback), and ABBA cancels such a drift.
        cmds = {}
        for who in ("plain-a", "module-a", "module-b", "plain-b"):
            repo = os.path.join(WORK, "repo-%s-%s" % (who, version))
            timed([binary, "-r", repo, "init"], env)
            cache = os.path.join(WORK, "cache-" + who)
            if who.startswith("plain"):
                cmds[who] = [binary, "-r", repo, "--cache-dir", cache, "backup", "--json", "--quiet", data]
            else:
                argsfile = os.path.join(WORK, "args-%s-%s.json" % (who, version))
                with open(argsfile, "w") as f:
                    json.dump({"ANSIBLE_MODULE_ARGS": {"repository": repo, "password": PASSWORD, "binary": binary,
                                                       "cache_dir": cache, "action": "backup", "paths": [data]}}, f)
                cmds[who] = [sys.executable, "-m", "ansible_collections.selfhost.homelab.plugins.modules.restic_repo",
                             argsfile]
        for phase in ("first", "incremental", "unchanged"):
            if phase == "incremental":
                change_tenth(data, args.files)
            took, changed = {}, []
            for who in ("plain-a", "module-a", "module-b", "plain-b"):
                took[who], out = timed(cmds[who], env)
                if who.startswith("module"):
                    changed.append(json.loads(out)["changed"])
            plain = (took["plain-a"] + took["plain-b"]) / 2
            module = (took["module-a"] + took["module-b"]) / 2
            rows.append((version, phase, plain, module, "/".join(str(c) for c in changed)))
    if args.json:
        print(json.dumps({"size_mb": args.size_mb, "files": args.files, "rows": [
            {"restic": version, "backup": phase, "restic_s": plain, "module_s": module, "changed": changed}
            for version, phase, plain, module, changed in rows]}))
        shutil.rmtree(WORK, ignore_errors=True)
        return
    print("%-7s %-12s %10s %10s %9s  %s" % ("restic", "backup", "restic s", "module s", "overhead", "changed"))
    for version, phase, plain, module, changed in rows:
        print("%-7s %-12s %10.2f %10.2f %8.1f%%  %s"
              % (version, phase, plain, module, (module - plain) / plain * 100, changed))
    print("data set: %d MiB in %d large + 500 small files" % (args.size_mb, args.files))
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
