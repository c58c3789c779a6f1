"""The generated reference docs and CHANGELOG.md match the code they are made from.

scripts/docs/build.py --check rebuilds every page in memory and compares it with the
committed file. When this fails, run `python scripts/docs/build.py` and commit the result.
"""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / "scripts" / "docs" / "build.py"
# What build.py reads and writes; enough of a checkout for it to run on a copy.
PARTS = ("galaxy.yml", "meta", "plugins", "roles", "changelogs", "docs", "CHANGELOG.md")


def run_build(*args, repo=REPO):
    return subprocess.run([sys.executable, str(BUILD), "--repo", str(repo), *args],
                          capture_output=True, text=True, timeout=300, check=False)


def load_build():
    spec = importlib.util.spec_from_file_location("docs_build", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_docs_are_current():
    proc = run_build("--check")
    assert proc.returncode == 0, (
        "generated docs are out of date; run `python scripts/docs/build.py` and commit:\n"
        + proc.stdout + proc.stderr)
    assert "docs up to date" in proc.stdout


@pytest.fixture
def checkout_copy(tmp_path):
    copy = tmp_path / "homelab"
    copy.mkdir()
    for part in PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, copy / part)
    return copy


def test_check_fails_on_a_changed_spec_a_new_fragment_and_an_orphan(checkout_copy):
    spec = checkout_copy / "roles" / "docker" / "meta" / "argument_specs.yml"
    spec.write_text(spec.read_text().replace("short_description:", "short_description: CHANGED", 1))
    (checkout_copy / "changelogs" / "fragments" / "99-test.yml").write_text(
        "---\nminor_changes:\n  - docs test - a fragment not yet released\n")
    (checkout_copy / "docs" / "roles" / "gone.md").write_text("a role that no longer exists\n")

    proc = run_build("--check", repo=checkout_copy)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "stale: docs/roles/docker.md" in proc.stdout
    assert "stale: docs/reference.md" in proc.stdout  # the index shows the short description
    assert "stale: CHANGELOG.md" in proc.stdout
    assert "orphaned (no source any more): docs/roles/gone.md" in proc.stdout
    assert "stale: docs/roles/base.md" not in proc.stdout

    written = run_build(repo=checkout_copy)
    assert written.returncode == 0, written.stdout + written.stderr
    assert "CHANGED" in (checkout_copy / "docs" / "roles" / "docker.md").read_text()
    assert "a fragment not yet released" in (checkout_copy / "CHANGELOG.md").read_text()
    assert not (checkout_copy / "docs" / "roles" / "gone.md").exists()
    # The fragments of the checkout are never consumed: the release runs on a copy.
    assert (checkout_copy / "changelogs" / "fragments" / "99-test.yml").exists()
    assert run_build("--check", repo=checkout_copy).returncode == 0


@pytest.mark.parametrize(
    ("markup", "markdown"),
    [
        ("Set C(photos) in O(photoprism_subdomain=photos).", "Set `photos` in `photoprism_subdomain=photos`."),
        ("See M(selfhost.homelab.restic_repo).", "See [`selfhost.homelab.restic_repo`](../modules/restic_repo.md)."),
        ("See M(community.general.zpool).", "See `community.general.zpool`."),
        ("P(selfhost.homelab.fqdn#filter) and V(true)", "[`selfhost.homelab.fqdn`](../filters/fqdn.md) and `true`"),
        ("I(never) B(ever) U(https://x.test/)", "*never* **ever** <https://x.test/>"),
        ("L(the docs,https://x.test/d)", "[the docs](https://x.test/d)"),
        ("<set> and *.domain keep home_dir", "\\<set\\> and \\*.domain keep home_dir"),
        ("KV(v2) is text", "KV(v2) is text"),
    ],
)
def test_markup(markup, markdown):
    assert load_build().md(markup, "roles") == markdown


def test_nested_suboptions_are_rendered():
    build = load_build()
    lines = build.render_options(
        {"repos": {"type": "list", "elements": "dict", "required": True, "description": "Where.",
                   "options": {"url": {"type": "str", "choices": ["a", "b"], "default": "a",
                                       "description": "The URL."}}}},
        "roles", ansible_doc=False)
    assert lines == [
        "- `repos` — *list of dict*, **required**",
        "",
        "  Where.",
        "",
        "  Suboptions:",
        "",
        "  - `url` — *str*, default: `a`",
        "",
        "    Choices: `a`, `b`",
        "",
        "    The URL.",
    ]
