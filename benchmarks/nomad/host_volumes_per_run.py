#!/usr/bin/env python
"""nomad_host_volume for an app's volumes: one module run per volume (a loop) vs one run with O(volumes).

Runs the module as Ansible runs it (the module file with its JSON arguments, one process per run)
against one Nomad simulator on loopback and prints, per case, the module runs, the HTTP requests in
the simulator's log and the wall seconds of the runs, side by side. Under Ansible each module run
also costs a task round trip (about 0.2 s with pipelining, see benchmarks/README.md), which this
local measurement leaves out: the module-run column is what that cost multiplies.
Not a timed test; run it by hand:  python benchmarks/nomad/host_volumes_per_run.py [--volumes N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from tests.simulators.base import SimServer  # noqa: E402
from tests.simulators.nomad import NomadSim  # noqa: E402

MODULE = "ansible_collections.selfhost.homelab.plugins.modules.nomad_host_volume"


def run(args: dict) -> dict:
    payload = dict(args, _ansible_tmpdir=tempfile.gettempdir(), _ansible_remote_tmp=tempfile.gettempdir())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, fh)
    env = dict(os.environ)
    env.pop("NOMAD_ADDR", None)
    try:
        proc = subprocess.run([sys.executable, "-m", MODULE, fh.name], capture_output=True, text=True, timeout=120,
                              cwd=REPO, check=False, env=env)
    finally:
        os.unlink(fh.name)
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise SystemExit("module failed: %s" % result.get("msg"))
    return result


def measure(server: SimServer, calls: list[dict]) -> tuple[int, int, float, bool]:
    mark = len(server.requests)
    start = time.monotonic()
    changed = False
    for args in calls:
        changed = run(args)["changed"] or changed
    return len(calls), len(server.requests) - mark, time.monotonic() - start, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=4, help="volumes of the app (default 4)")
    opts = parser.parse_args()
    server = SimServer(NomadSim()).start()
    try:
        conn = {"address": server.address}
        rows = []
        for style in ("loop", "list"):
            items = [{"name": "bench-%s-%d" % (style, i), "host_path": "/srv/homelab/bench/%s/%d" % (style, i)}
                     for i in range(opts.volumes)]
            moved = [dict(items[0], host_path=items[0]["host_path"] + "-moved")] + items[1:]
            names = [{"name": item["name"]} for item in items]

            def calls(vols, state="present", style=style):
                if style == "loop":
                    return [dict(conn, state=state, **vol) for vol in vols]
                return [dict(conn, state=state, volumes=vols)]

            for case, todo in (("new", calls(items)), ("unchanged", calls(items)), ("one changed", calls(moved)),
                               ("absent", calls(names, "absent"))):
                rows.append((case, style) + measure(server, todo))
    finally:
        server.stop()
    print("nomad_host_volume, %d volumes of one app, Nomad simulator on loopback" % opts.volumes)
    print("%-12s %6s %6s %6s %6s %8s %8s" % ("case", "runs", "", "req", "", "s", ""))
    print("%-12s %6s %6s %6s %6s %8s %8s" % ("", "loop", "list", "loop", "list", "loop", "list"))
    by = {(r[0], r[1]): r for r in rows}
    for case in ("new", "unchanged", "one changed", "absent"):
        loop, lst = by[(case, "loop")], by[(case, "list")]
        assert loop[5] == lst[5], "both styles must agree on changed"
        print("%-12s %6d %6d %6d %6d %8.2f %8.2f" % (case, loop[2], lst[2], loop[3], lst[3], loop[4], lst[4]))


if __name__ == "__main__":
    main()
