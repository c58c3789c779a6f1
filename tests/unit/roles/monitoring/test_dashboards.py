"""The committed dashboards are exactly what scripts/monitoring/dashboards.py generates."""

import importlib.util
import json
import os

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
SCRIPT = os.path.join(REPO, "scripts", "monitoring", "dashboards.py")


def _generator():
    spec = importlib.util.spec_from_file_location("homelab_dashboards", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["host", "zfs", "containers", "smart"])
def test_committed_json_matches_the_code(name):
    generator = _generator()
    with open(os.path.join(REPO, "roles", "monitoring", "files", "dashboards", name + ".json")) as f:
        committed = f.read()
    assert committed == generator.render(name), "run scripts/monitoring/dashboards.py and commit the result"


def test_panels_have_unique_ids_and_a_layout():
    generator = _generator()
    for name in generator.DASHBOARDS:
        dashboard = json.loads(generator.render(name))
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        for panel in dashboard["panels"]:
            assert {"h", "w", "x", "y"} <= set(panel["gridPos"])


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch):
    generator = _generator()
    monkeypatch.setattr(generator, "OUT", str(tmp_path))
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0
    (tmp_path / "zfs.json").write_text("{}\n")
    assert generator.main(["--check"]) == 1
