#!/usr/bin/env python
"""HTTP requests per run: selfhost.homelab.nomad_job vs community.general.nomad_job, side by side.

Runs each module (as Ansible runs it: the module file with its JSON arguments) against one
Nomad simulator on loopback and counts the requests in the simulator's log per case.
Not a timed test; run it by hand:  python benchmarks/nomad/requests_per_run.py [--json]
(--json prints the rows as JSON for benchmarks/run.py instead of the table.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from tests.simulators.base import SimServer  # noqa: E402
from tests.simulators.nomad import NomadSim  # noqa: E402

JOB = '''
job "%s" {
  group "web" {
    network {
      port "http" {
        to = 80
      }
    }
    task "web" {
      driver = "docker"
      config {
        image = "%s"
        ports = ["http"]
      }
    }
  }
}
'''


def run(module: str, args: dict, check: bool = False) -> dict:
    payload = dict(args, _ansible_check_mode=check, _ansible_tmpdir=tempfile.gettempdir(),
                   _ansible_remote_tmp=tempfile.gettempdir())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, fh)
    try:
        proc = subprocess.run([sys.executable, "-m", module, fh.name], capture_output=True, text=True, timeout=120,
                              cwd=REPO, check=False)
    finally:
        os.unlink(fh.name)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return {"failed": True, "msg": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    as_json = parser.parse_args().json
    sim = NomadSim(settle_seconds=0.0)
    server = SimServer(sim).start()
    addr = urlsplit(server.address)
    ours = ("ansible_collections.selfhost.homelab.plugins.modules.nomad_job", {"address": server.address})
    theirs = ("ansible_collections.community.general.plugins.modules.nomad_job",
              {"host": addr.hostname, "port": addr.port, "use_ssl": False})
    cases = [
        ("new HCL job", lambda j: {"content": JOB % (j, "nginx:1.27"), "state": "present"}, False),
        ("unchanged HCL job", lambda j: {"content": JOB % (j, "nginx:1.27"), "state": "present"}, False),
        ("unchanged HCL job, check mode", lambda j: {"content": JOB % (j, "nginx:1.27"), "state": "present"}, True),
        ("changed HCL job", lambda j: {"content": JOB % (j, "nginx:1.28"), "state": "present"}, False),
        ("absent, job running", lambda j: {"name": j, "state": "absent"}, False),
        ("absent, job already stopped", lambda j: {"name": j, "state": "absent"}, False),
        ("absent, job missing", lambda j: {"name": j + "-missing", "state": "absent"}, False),
    ]
    rows = []
    for title, make, check in cases:
        row = [title]
        for (module, conn), job_id in ((ours, "bench-ours"), (theirs, "bench-cg")):
            server.reset_log()
            res = run(module, {**conn, **make(job_id)}, check)
            calls = [(r["method"], r["path"]) for r in server.requests]
            if res.get("failed"):
                outcome = "FAILED"
            else:
                outcome = "changed" if res.get("changed") else "ok"
            detail = ", ".join("%s %s" % (m, p.replace("/v1/", "").replace(job_id, "ID")) for m, p in calls)
            register_paths = ("/v1/jobs", "/v1/job/" + job_id)
            registers = sum(1 for m, p in calls if m in ("PUT", "POST") and p in register_paths)
            row.append((len(calls), registers, outcome, detail))
        rows.append(row)
    server.stop()
    if as_json:
        keys = ("requests", "registers", "result", "calls")
        print(json.dumps({"cases": [{"case": title, "selfhost.homelab.nomad_job": dict(zip(keys, a, strict=True)),
                                     "community.general.nomad_job": dict(zip(keys, b, strict=True))}
                                    for title, a, b in rows]}))
        return 0
    print("%-30s | %-32s | %-32s" % ("case", "selfhost.homelab.nomad_job", "community.general.nomad_job"))
    print("%-30s | %-32s | %-32s" % ("", "requests (registers) result", "requests (registers) result"))
    print("-" * 100)
    for title, a, b in rows:
        print("%-30s | %3d (%d) %-22s | %3d (%d) %-22s" % (title, a[0], a[1], a[2], b[0], b[1], b[2]))
    print()
    for title, a, b in rows:
        print("%s\n  ours:   %s\n  c.g.:   %s" % (title, a[3] or "-", b[3] or "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
