#!/usr/bin/env python
"""Run the benchmarks and print ONE table, with the machine it ran on.

    source scripts/lib.sh && activate_env
    python benchmarks/run.py                       # all: nomad vault restic zfs demo cluster
    python benchmarks/run.py --only nomad,vault    # a subset
    python benchmarks/run.py --skip demo,zfs       # all but the heavy ones

Each benchmark is its own script under benchmarks/<area>/, run here as a subprocess with
--json (it can still be run alone for its detailed table). Cost, roughly, on 2 cores:
nomad and vault a few seconds each; restic about a minute per 100 MiB of --restic-size-mb
(default 512, four repositories and two restic versions); zfs boots the OpenZFS test VM
(minutes under software emulation) unless --zfs-state names a running one; demo makes the
demo container anew and converges site.yml twice (the longest); cluster converges the HashiCorp
layer on 1 and on 4 fresh containers, twice each (molecule). Run the heavy ones on an
otherwise idle machine: the load average at start is printed so a busy run shows as one.
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ORDER = ("nomad", "vault", "restic", "zfs", "demo", "cluster")


def script_command(area: str, args) -> list[str]:
    py = sys.executable
    if area == "nomad":
        return [py, "benchmarks/nomad/requests_per_run.py", "--json"]
    if area == "vault":
        return [py, "benchmarks/vault/requests_per_run.py", "--json"]
    if area == "restic":
        return [py, "benchmarks/restic/bench_backup.py", "--json", "--size-mb", str(args.restic_size_mb)]
    if area == "zfs":
        state = ["--state", args.zfs_state] if args.zfs_state else []
        return [py, "benchmarks/zfs/command_count.py", "--json", *state]
    if area == "demo":
        return [py, "benchmarks/demo/converge.py", "--json", "--floor-tasks", str(args.floor_tasks),
                *(["--keep"] if args.demo_keep else [])]
    if area == "cluster":
        return [py, "benchmarks/cluster/converge.py", "--json"]
    raise ValueError(area)


def run_area(area: str, args) -> tuple[dict | None, float, str]:
    """(parsed JSON or None, seconds, error text)."""
    start = time.monotonic()
    env = dict(os.environ)
    collections = str(REPO / ".cache" / "collections")
    paths = (collections, env.get("ANSIBLE_COLLECTIONS_PATH"))
    env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join(p for p in paths if p)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (collections, str(REPO), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(script_command(area, args), cwd=REPO, capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    data = None
    if lines:
        try:
            data = json.loads(lines[-1])
        except ValueError:
            data = None
    error = ""
    if proc.returncode != 0 or data is None:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        error = "exit %d: %s" % (proc.returncode, " / ".join(tail))
    return data, seconds, error


# --- machine ---------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return "%.0f GiB" % (int(line.split()[1]) / 1024 / 1024)
    except OSError:
        pass
    return "?"


def git_commit() -> str:
    proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return (proc.stdout.strip() or "?") + ("+changes" if dirty else "")


def machine() -> list[str]:
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip() or "?"
    load = " ".join("%.2f" % x for x in os.getloadavg())
    kernel = "%s %s" % (platform.system(), platform.release())
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return [
        "machine: %s, %s cores (nproc), %s RAM, %s" % (cpu_model(), nproc, memory_gib(), kernel),
        "load average at start (1/5/15 min): %s" % load,
        "run: %s, commit %s, Python %s" % (when, git_commit(), platform.python_version()),
    ]


# --- rows: (area, case, selfhost.homelab, other, other's name, note) --------------------------

def nomad_rows(data: dict) -> list[tuple]:
    def cell(r):
        return "%d req (%d reg) %s" % (r["requests"], r["registers"], r["result"])
    return [("nomad", c["case"], cell(c["selfhost.homelab.nomad_job"]), cell(c["community.general.nomad_job"]),
             "community.general.nomad_job", "") for c in data["cases"]]


def vault_rows(data: dict) -> list[tuple]:
    by_case: dict[str, dict] = {}
    for r in data["rows"]:
        by_case.setdefault(r["case"], {})[r["module"]] = r

    def cell(r):
        if r is None:
            return "-"
        outcome = "changed" if r["changed"] else "ok"
        return "%d req (%dR %dW), +%d ver, %s" % (r["total"], r["reads"], r["writes"], r["new versions"], outcome)
    rows = []
    for case, mods in by_case.items():
        ours = mods.get("vault_kv (engine_version: 2)")
        detected = mods.get("vault_kv (engine detected)")
        for label in ("hashi_vault.vault_kv2_write", "hashi_vault.vault_kv2_write read_before_write"):
            theirs = mods.get(label)
            name = "community." + label.replace(" read_before_write", " (read_before_write)")
            first = label == "hashi_vault.vault_kv2_write"
            note = "engine detected: %d req" % detected["total"] if detected and first else ""
            rows.append(("vault", case, cell(ours), cell(theirs), name, note))
    return rows


def restic_rows(data: dict) -> list[tuple]:
    rows = []
    for r in data["rows"]:
        overhead = (r["module_s"] - r["restic_s"]) / r["restic_s"] * 100 if r["restic_s"] else float("nan")
        rows.append(("restic", "%s backup, restic %s" % (r["backup"], r["restic"]),
                     "%.2f s (changed %s)" % (r["module_s"], r["changed"]), "%.2f s" % r["restic_s"],
                     "restic itself", "%+.1f %%; %d MiB, %d+500 files" % (overhead, data["size_mb"], data["files"])))
    return rows


def zfs_rows(data: dict) -> list[tuple]:
    by = {r["module"]: r for r in data["rows"]}

    def cell(r):
        return "-" if r is None else "%d cmds, %s" % (r["commands"], r["result"][:60])
    return [("zfs", "unchanged mirror pool (by-id disks)", cell(by.get("selfhost.homelab.zpool")),
             cell(by.get("community.general.zpool")), "community.general.zpool",
             "OpenZFS %s, %s" % (data.get("zfs_version"), str(data.get("accel", "?")).upper()))]


def demo_rows(data: dict) -> list[tuple]:
    fresh, rerun = data["fresh"], data["rerun"]
    ratio, multiple = data["ratio"], data["multiple"]
    return [
        ("demo", "fresh converge", "%.1f s" % data["fresh_s"], "", "", "changed=%d" % fresh.get("changed", 0)),
        ("demo", "idempotent re-run", "%.1f s" % data["rerun_s"], "", "", "changed=%d" % rerun.get("changed", 0)),
        ("demo", "task executions (re-run)", "%d" % data["executions"], "", "",
         "ok=%d skipped=%d" % (rerun.get("ok", 0), rerun.get("skipped", 0))),
        ("demo", "re-run / fresh", "%.0f %%" % (100 * ratio), "", "",
         "goal <= 25 %: " + ("met" if ratio <= 0.25 else "MISSED")),
        ("demo", "per-task floor (ping)", "%.0f ms" % (1000 * data["floor_s"]), "", "",
         "(%d pings - 1) / %d" % (data["floor_tasks"], data["floor_tasks"] - 1)),
        ("demo", "re-run / (tasks x floor)", "%.2f x" % multiple, "", "",
         "goal <= 1.3 x: " + ("met" if multiple <= 1.3 else "MISSED")),
    ]


def cluster_rows(data: dict) -> list[tuple]:
    one, four = data["nodes"]["1 node"], data["nodes"]["4 nodes"]
    return [
        ("cluster", "HashiCorp layer, fresh converge", "%.1f s on 4 nodes" % four["fresh_s"],
         "%.1f s on 1 node" % one["fresh_s"], "same roles", "4 / 1 = %.2f x" % data["fresh_ratio"]),
        ("cluster", "HashiCorp layer, re-run", "%.1f s on 4 nodes" % four["rerun_s"],
         "%.1f s on 1 node" % one["rerun_s"], "same roles",
         "4 / 1 = %.2f x; changed=%d / %d" % (data["rerun_ratio"], four["rerun_changed"], one["rerun_changed"])),
    ]


ROWS = {"nomad": nomad_rows, "vault": vault_rows, "restic": restic_rows, "zfs": zfs_rows, "demo": demo_rows,
        "cluster": cluster_rows}


def table(rows: list[tuple]) -> list[str]:
    header = ("area", "case", "selfhost.homelab", "compared with", "its figure", "note")
    cols = [(r[0], r[1], r[2], r[4], r[3], r[5]) for r in rows]
    widths = [max(len(str(c[i])) for c in [header, *cols]) for i in range(len(header))]
    out = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths)]
    last = None
    for c in cols:
        if last is not None and c[0] != last:
            out.append("")
        last = c[0]
        out.append("  ".join(str(v).ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    return out


def areas_from(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        raise argparse.ArgumentTypeError("unknown benchmark %s (known: %s)" % (", ".join(unknown), ", ".join(ORDER)))
    return names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--only", type=areas_from, help="comma-separated subset of: " + ", ".join(ORDER))
    parser.add_argument("--skip", type=areas_from, default=[], help="comma-separated benchmarks to leave out")
    parser.add_argument("--restic-size-mb", type=int, default=512, help="restic data set size (default 512)")
    parser.add_argument("--zfs-state", help="state dir of a running ZFS test VM (scripts/vm/zfsvm.py start DIR)")
    parser.add_argument("--floor-tasks", type=int, default=40, help="trivial tasks in the demo's floor play")
    parser.add_argument("--demo-keep", action="store_true", help="converge the existing demo container")
    args = parser.parse_args(argv)
    areas = [a for a in ORDER if a in (args.only or ORDER) and a not in args.skip]
    if not areas:
        parser.error("nothing to run")

    header = machine()  # the load average before any benchmark adds to it
    rows, notes = [], []
    for area in areas:
        print("running %s ..." % area, file=sys.stderr, flush=True)
        data, seconds, error = run_area(area, args)
        if data is not None:
            try:
                rows += ROWS[area](data)
            except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
                error = error or "unexpected output: %r" % exc
        notes.append("%s: %.0f s%s" % (area, seconds, ("; FAILED " + error) if error else ""))

    print("\n".join(header))
    print()
    print("\n".join(table(rows)) if rows else "(no results)")
    print()
    print("wall time per benchmark: " + "; ".join(notes))
    print("req = HTTP requests to the server (reg = job registrations; R/W = reads/writes); "
          "+N ver = new KV versions; cmds = zpool/zfs commands run")
    return 1 if any("FAILED" in n for n in notes) else 0


if __name__ == "__main__":
    sys.exit(main())
