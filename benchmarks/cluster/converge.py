#!/usr/bin/env python
"""Converge time of the HashiCorp layer on 1 node and on a 4-node cluster, side by side.

The same roles, two molecule scenarios from fresh Debian 12 containers:
- 1 node:  molecule/hashistack (one box: Consul, Vault and Nomad servers, Nomad client),
  playbooks/hashistack.yml;
- 4 nodes: molecule/hashistack_cluster (three servers and one client on their own network:
  real Consul forms a cluster; Nomad and Vault are the simulators run as clusters). Its
  converge is the whole site.yml; the benchmark runs it with ``--tags hashistack`` (the
  preflight and the HashiCorp layer), so both rows time the same layer.
For each: `molecule destroy`, `create`, `prepare`, then a timed `molecule converge` (the fresh
converge), a timed second converge (the re-run), then `destroy`. Task executions are read
from the play recap. Prints one table (or --json for benchmarks/run.py).

Not a test: run it by hand after scripts/bootstrap.sh, in the venv, on an idle machine:
    source scripts/lib.sh && activate_env && python benchmarks/cluster/converge.py [--json]
The whole stack on one box is timed by benchmarks/demo/converge.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# (label, scenario, nodes, extra ansible-playbook arguments of its converge)
SCENARIOS = (("1 node", "hashistack", 1, ()), ("4 nodes", "hashistack_cluster", 4, ("--tags", "hashistack")))
RECAP = re.compile(r"^(\S+)\s+:\s+(ok=\d+.*)$", re.M)


def molecule(action: str, scenario: str, extra: tuple[str, ...] = ()) -> tuple[float, str]:
    start = time.monotonic()
    argv = ["molecule", action, "-s", scenario] + (["--", *extra] if extra else [])
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PY_COLORS="0"))
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write((proc.stdout + proc.stderr)[-4000:])
        raise SystemExit("molecule %s -s %s failed (exit %d)" % (action, scenario, proc.returncode))
    return seconds, re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)


def recap(text: str) -> dict[str, int]:
    """Counters summed over the hosts of the last play recap."""
    totals: dict[str, int] = {}
    last = text.rsplit("PLAY RECAP", 1)[-1]
    for _host, counters in RECAP.findall(last):
        for key, value in re.findall(r"(\w+)=(\d+)", counters):
            totals[key] = totals.get(key, 0) + int(value)
    return totals


def executions(counters: dict[str, int]) -> int:
    return sum(counters.get(k, 0) for k in ("ok", "failed", "skipped", "rescued", "ignored"))


def measure(scenario: str, extra: tuple[str, ...]) -> dict:
    molecule("destroy", scenario)
    try:
        molecule("create", scenario)
        molecule("prepare", scenario)
        fresh_s, fresh_out = molecule("converge", scenario, extra)
        rerun_s, rerun_out = molecule("converge", scenario, extra)
    finally:
        molecule("destroy", scenario)
    fresh, rerun = recap(fresh_out), recap(rerun_out)
    return {"fresh_s": fresh_s, "rerun_s": rerun_s, "fresh_tasks": executions(fresh),
            "rerun_tasks": executions(rerun), "rerun_changed": rerun.get("changed", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    args = parser.parse_args()
    figures = {label: dict(measure(scenario, extra), scenario=scenario, nodes=nodes)
               for label, scenario, nodes, extra in SCENARIOS}
    one, four = figures["1 node"], figures["4 nodes"]
    summary = {"nodes": figures, "fresh_ratio": four["fresh_s"] / one["fresh_s"],
               "rerun_ratio": four["rerun_s"] / one["rerun_s"]}
    if args.json:
        print(json.dumps(summary))
        return
    print("HashiCorp layer converge, 1 node vs 4 nodes (%s, %d cores, load %.1f)"
          % (time.strftime("%Y-%m-%d"), os.cpu_count(), os.getloadavg()[0]))
    header = ("", "scenario", "fresh", "re-run", "tasks (fresh)", "tasks (re-run)")
    print("  %-8s %-20s %12s %12s %14s %14s" % header)
    for label, f in figures.items():
        cells = (label, f["scenario"], f["fresh_s"], f["rerun_s"], f["fresh_tasks"], f["rerun_tasks"])
        print("  %-8s %-20s %10.1f s %10.1f s %14d %14d" % cells)
    print("  4 nodes / 1 node: fresh %.2f x, re-run %.2f x (Ansible runs the hosts in parallel, forks=5)"
          % (summary["fresh_ratio"], summary["rerun_ratio"]))


if __name__ == "__main__":
    main()
