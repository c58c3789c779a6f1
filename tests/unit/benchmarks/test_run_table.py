"""benchmarks/run.py turns each benchmark's --json output into rows of one table.

The benchmarks themselves are not run here (they are not tests); these check that the
table builder reads the JSON each script prints, including the heavy ones (zfs, demo)
that only run by hand.
"""

import importlib.util
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[3] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("benchmarks_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_area_has_a_row_builder_and_a_command(run):
    args = run.argparse.Namespace(restic_size_mb=8, zfs_state="/tmp/z", floor_tasks=10, demo_keep=True)
    for area in run.ORDER:
        assert area in run.ROWS
        cmd = run.script_command(area, args)
        assert "--json" in cmd and (RUN.parent / cmd[1].split("/", 1)[1]).is_file()
    assert run.script_command("zfs", args)[-2:] == ["--state", "/tmp/z"]
    assert "--keep" in run.script_command("demo", args)


def test_zfs_and_demo_rows(run):
    zfs = run.zfs_rows({"zfs_version": "2.1.11", "accel": "tcg", "rows": [
        {"module": "selfhost.homelab.zpool", "commands": 3, "result": "unchanged", "calls": []},
        {"module": "community.general.zpool", "commands": 9, "result": "FAILED: cannot add", "calls": []}]})
    assert zfs == [("zfs", "unchanged mirror pool (by-id disks)", "3 cmds, unchanged", "9 cmds, FAILED: cannot add",
                    "community.general.zpool", "OpenZFS 2.1.11, TCG")]
    demo = run.demo_rows({"fresh_s": 400.0, "fresh": {"changed": 120}, "rerun_s": 80.0,
                          "rerun": {"changed": 0, "ok": 300, "skipped": 100}, "executions": 400, "ratio": 0.2,
                          "floor_s": 0.25, "floor_tasks": 40, "multiple": 0.8})
    cells = {row[1]: (row[2], row[5]) for row in demo}
    assert cells["re-run / fresh"] == ("20 %", "goal <= 25 %: met")
    assert cells["per-task floor (ping)"] == ("250 ms", "(40 pings - 1) / 39")
    assert cells["re-run / (tasks x floor)"] == ("0.80 x", "goal <= 1.3 x: met")


def test_one_table_with_aligned_columns(run):
    rows = run.nomad_rows({"cases": [{"case": "new HCL job",
                                      "selfhost.homelab.nomad_job": {"requests": 3, "registers": 1, "result": "changed",
                                                                     "calls": ""},
                                      "community.general.nomad_job": {"requests": 4, "registers": 1,
                                                                      "result": "changed", "calls": ""}}]})
    rows += run.restic_rows({"size_mb": 8, "files": 10, "rows": [
        {"restic": "0.18", "backup": "first", "restic_s": 1.0, "module_s": 1.5, "changed": "True/True"}]})
    lines = run.table(rows)
    assert lines[0].split() == ["area", "case", "selfhost.homelab", "compared", "with", "its", "figure", "note"]
    assert "3 req (1 reg) changed" in lines[2] and "4 req (1 reg) changed" in lines[2]
    assert lines[3] == ""  # a blank line between areas
    assert "+50.0 %" in lines[4]
    assert lines[2].index("community.general.nomad_job") == lines[4].index("restic itself")
