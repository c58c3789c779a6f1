#!/usr/bin/env python
"""Re-run cost of ensuring N directories: ansible.builtin.file in a loop vs one selfhost.homelab.directories run.

Both plays ensure the same N existing directories (owner, group, mode) under a temporary directory, over
the local connection (or `--connection docker --host NAME` for a container you started), and each is run
REPEAT times after a first converge; the table shows the median wall time of ansible-playbook and the
module executions per run. Not a test; run it by hand:
    python benchmarks/directories/rerun.py [--count 10] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

LOOP = """
- hosts: target
  gather_facts: false
  tasks:
    - name: One ansible.builtin.file run per directory
      ansible.builtin.file:
        path: "{{ item.path }}"
        state: directory
        owner: "{{ item.owner }}"
        group: "{{ item.group }}"
        mode: "{{ item.mode }}"
      loop: "{{ dirs }}"
"""

ONE = """
- hosts: target
  gather_facts: false
  tasks:
    - name: One selfhost.homelab.directories run for all
      selfhost.homelab.directories:
        directories: "{{ dirs }}"
"""


def play(workdir, text, inventory, dirs):
    book = os.path.join(workdir, "play.yml")
    with open(book, "w") as f:
        f.write(text)
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".cache", "collections"))
    start = time.monotonic()
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", inventory, book, "-e", json.dumps({"dirs": dirs})],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("ansible-playbook failed:\n" + proc.stdout[-2000:] + proc.stderr[-2000:])
    host = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]
    result = next(iter(host.values()))
    runs = len(result.get("results", [])) or 1
    return took, runs, bool(result.get("changed"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10, help="directories per play (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="timed re-runs per play (default 3)")
    parser.add_argument("--connection", default="local")
    parser.add_argument("--host", default="localhost", help="target host (a container's name with docker)")
    parser.add_argument("--root", default=None, help="directory on the target to work under (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-directories-") as workdir:
        root = args.root or os.path.join(workdir, "target")
        inventory = os.path.join(workdir, "hosts.yml")
        with open(inventory, "w") as f:
            python = sys.executable if args.connection == "local" else "auto_silent"
            host = {"ansible_connection": args.connection, "ansible_python_interpreter": python}
            json.dump({"all": {"hosts": {args.host: host}, "children": {"target": {"hosts": {args.host: {}}}}}}, f)
        rows = []
        for name, text in (("ansible.builtin.file (loop)", LOOP), ("selfhost.homelab.directories", ONE)):
            dirs = [{"path": "%s/%s/d%02d" % (root, "loop" if text is LOOP else "one", i), "owner": "root",
                     "group": "root", "mode": "0750"} for i in range(args.count)]
            play(workdir, text, inventory, dirs)  # converge
            times, runs, changed = [], 0, False
            for _run in range(args.repeat):
                took, runs, changed_now = play(workdir, text, inventory, dirs)
                times.append(took)
                changed = changed or changed_now
            rows.append({"case": "re-run, %d directories" % args.count, "module": name,
                         "seconds": round(statistics.median(times), 2), "module_runs": runs,
                         "changed": changed})
    if args.json:
        print(json.dumps(rows))
        return
    print("%-26s %-30s %10s %12s %8s" % ("case", "module", "median s", "module runs", "changed"))
    for row in rows:
        cells = (row["case"], row["module"], row["seconds"], row["module_runs"], row["changed"])
        print("%-26s %-30s %10.2f %12d %8s" % cells)


if __name__ == "__main__":
    main()
