#!/usr/bin/env python
"""The demo's converge cost: fresh converge, idempotent re-run, and Ansible's per-task floor.

Steps (all against the bundled demo target of scripts/demo.sh):
1. the demo container is made anew (scripts/demo.sh --destroy, then started: demo.sh makes the
   secrets file and runs inventories/demo/prepare.yml, the simulated parts, but no site.yml task);
2. `ansible-playbook playbooks/site.yml` on the fresh container with the demo's secrets (the
   fresh converge of the whole stack);
3. the same again (the idempotent re-run; it must report changed=0);
4. the per-task floor over the same connection: a play of N trivial tasks
   (`ansible.builtin.ping`) minus a play of one, divided by N - 1.
Prints one table with the issue's two goals: re-run <= 25% of the fresh converge, and
re-run <= 1.3 x (task executions x the per-task floor).

Not a test: run it by hand after scripts/bootstrap.sh, in the venv:
    source scripts/lib.sh && activate_env && python benchmarks/demo/converge.py [--floor-tasks 40] [--json]
(--json prints the figures as JSON for benchmarks/run.py instead of the table.)
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(REPO, "inventories", "demo", "hosts.yml")
CACHE = os.environ.get("HOMELAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "selfhost-homelab")
# The secrets scripts/demo.sh generates (scripts/demo-secrets.sh).
VAULT_ARGS = ["-e", "@" + os.path.join(CACHE, "demo", "secrets.vault.yml"),
              "--vault-password-file", os.path.join(CACHE, "demo", "vault-password")]
RECAP = re.compile(r"^demo\s*:\s*(.*)$", re.M)


def run_playbook(playbook, *extra):
    """Run a playbook against the demo; return (seconds, recap counters)."""
    start = time.monotonic()
    proc = subprocess.run(
        ["ansible-playbook", playbook, "-i", INVENTORY, *extra],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    seconds = time.monotonic() - start
    match = RECAP.findall(proc.stdout)
    if proc.returncode != 0 or not match:
        sys.stdout.write(proc.stdout[-4000:])
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit("ansible-playbook %s failed (exit %d)" % (playbook, proc.returncode))
    counters = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match[-1])}
    return seconds, counters


def executions(counters):
    # `ok` already includes `changed`; skipped tasks are still evaluated per host.
    return sum(counters.get(k, 0) for k in ("ok", "failed", "skipped", "rescued", "ignored"))


def floor_playbook(path, tasks):
    with open(path, "w") as f:
        f.write("---\n- name: Per-task floor\n  hosts: demo\n  gather_facts: false\n  tasks:\n")
        for i in range(tasks):
            f.write("    - name: Ping %d\n      ansible.builtin.ping:\n" % i)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floor-tasks", type=int, default=40, help="trivial tasks in the floor play")
    parser.add_argument("--keep", action="store_true", help="do not make the container anew first")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    args = parser.parse_args()

    demo = os.path.join(REPO, "scripts", "demo.sh")
    if not args.keep:
        subprocess.run([demo, "--destroy"], check=True, capture_output=True)
    # Starts (or keeps) the demo container; --list-hosts runs no task.
    subprocess.run([demo, "--list-hosts"], check=True, capture_output=True)

    site = os.path.join(REPO, "playbooks", "site.yml")
    fresh_s, fresh = run_playbook(site, *VAULT_ARGS)
    rerun_s, rerun = run_playbook(site, *VAULT_ARGS)

    with tempfile.TemporaryDirectory() as tmp:
        many, one = os.path.join(tmp, "many.yml"), os.path.join(tmp, "one.yml")
        floor_playbook(many, args.floor_tasks)
        floor_playbook(one, 1)
        t_many = min(run_playbook(many)[0] for _run in range(2))
        t_one = min(run_playbook(one)[0] for _run in range(2))
    floor = (t_many - t_one) / (args.floor_tasks - 1)

    n, k = executions(rerun), args.floor_tasks
    ratio = rerun_s / fresh_s
    multiple = rerun_s / (n * floor) if floor > 0 else float("inf")
    rows = [
        ("fresh converge", "%.1f s" % fresh_s, "changed=%d" % fresh.get("changed", 0)),
        ("idempotent re-run", "%.1f s" % rerun_s, "changed=%d" % rerun.get("changed", 0)),
        ("task executions (re-run)", "%d" % n, "ok=%d skipped=%d" % (rerun.get("ok", 0), rerun.get("skipped", 0))),
        ("re-run / fresh", "%.0f %%" % (100 * ratio), "goal <= 25 %: " + ("met" if ratio <= 0.25 else "MISSED")),
        ("per-task floor (ping)", "%.0f ms" % (1000 * floor), "(%d pings - 1 ping) / %d" % (k, k - 1)),
        ("re-run / (tasks x floor)", "%.2f x" % multiple, "goal <= 1.3 x: " + ("met" if multiple <= 1.3 else "MISSED")),
    ]
    if args.json:
        print(json.dumps({"fresh_s": fresh_s, "fresh": fresh, "rerun_s": rerun_s, "rerun": rerun,
                          "executions": n, "ratio": ratio, "floor_s": floor, "floor_tasks": k,
                          "multiple": multiple}))
    else:
        print_rows(rows)
    if rerun.get("changed", 0):
        raise SystemExit("the re-run changed something: not idempotent")


def print_rows(rows):
    width = max(len(r[0]) for r in rows)
    print("demo converge (%s, %d cores)" % (time.strftime("%Y-%m-%d"), os.cpu_count()))
    for name, value, note in rows:
        print("  %-*s  %10s   %s" % (width, name, value, note))


if __name__ == "__main__":
    main()
