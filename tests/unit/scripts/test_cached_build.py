"""scripts/lib.sh's cached_build: one build per key, parallel callers wait for it, a failed build leaves nothing."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

LIB = Path(__file__).resolve().parents[3] / "scripts" / "lib.sh"

# A build that counts its runs, says something on stdout (which must not reach the caller's
# stdout) and takes a moment, so that parallel callers really overlap.
SCRIPT = r'''
source "$1"
root="$2" key="$3" mode="$4"
build() {
  echo "build output on stdout"
  echo run >> "$root.runs"
  sleep 0.5
  [ "$mode" = fail ] && { echo "partial" > "$1/half"; exit 3; }
  echo "made" > "$1/artifact"
}
cached_build "$root" "$key" build
echo "after cached_build"
'''


def call(tmp_path: Path, key: str, mode: str = "ok") -> subprocess.CompletedProcess:
    # HOMELAB_CACHE points into the test's directory: sourcing lib.sh creates it.
    return subprocess.run(["bash", "-c", SCRIPT, "cached-build-test", str(LIB), str(tmp_path / "root"), key, mode],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HOMELAB_CACHE": str(tmp_path / "c")})


def runs(tmp_path: Path) -> int:
    path = tmp_path / "root.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_builds_once_and_prints_only_the_path(tmp_path):
    first = call(tmp_path, "k1")
    assert first.returncode == 0, first.stderr
    out = tmp_path / "root" / "k1"
    assert first.stdout == "%s\nafter cached_build\n" % out
    assert "build output on stdout" in first.stderr
    assert (out / "artifact").read_text() == "made\n"
    assert (out / ".complete").exists()
    again = call(tmp_path, "k1")
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert again.stderr == ""
    assert runs(tmp_path) == 1
    # another key is another build beside it
    assert call(tmp_path, "k2").stdout.startswith("%s\n" % (tmp_path / "root" / "k2"))
    assert runs(tmp_path) == 2
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == [".lock", "k1", "k2"]


def test_parallel_callers_wait_for_one_build(tmp_path):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: call(tmp_path, "shared"), range(4)))
    for result in results:
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0] == str(tmp_path / "root" / "shared")
    assert runs(tmp_path) == 1
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == [".lock", "shared"]


def test_a_failed_build_stops_the_caller_and_leaves_nothing(tmp_path):
    failed = call(tmp_path, "k", mode="fail")
    assert failed.returncode == 3
    assert failed.stdout == ""
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == [".lock"]
    # the next call builds again
    ok = call(tmp_path, "k")
    assert ok.returncode == 0, ok.stderr
    assert runs(tmp_path) == 2
