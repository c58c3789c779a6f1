"""scripts/hashistack/bumped-mirror.sh: the upgrade that molecule/hashistack_cluster rolls out.

The mirror keeps every release of the hashistack mirror and adds the next patch
release of the Nomad and Vault simulators, signed with the same test key, whose
executables report that version.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _script(name: str) -> Path:
    out = subprocess.run([str(REPO / "scripts" / "hashistack" / name)], capture_output=True, text=True,
                         timeout=600, check=True)
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def mirrors():
    return _script("mirror.sh"), _script("bumped-mirror.sh")


@pytest.mark.parametrize("product", ["nomad", "vault"])
def test_the_next_patch_release_is_signed_and_reports_its_version(mirrors, product, tmp_path):
    base, bumped = mirrors
    current = list(json.loads((base / product / "index.json").read_text())["versions"])
    versions = list(json.loads((bumped / product / "index.json").read_text())["versions"])
    major, minor, patch = current[0].split(".")
    assert versions == ["%s.%s.%d" % (major, minor, int(patch) + 1)] + current
    new = versions[0]
    directory = bumped / product / new
    keyring = tmp_path / "keyring.gpg"
    subprocess.run(["gpg", "--batch", "--yes", "--dearmor", "-o", str(keyring),
                    str(bumped / "release-signing-key.asc")],
                   check=True, timeout=60, env=dict(os.environ, GNUPGHOME=str(tmp_path)))
    sums = directory / ("%s_%s_SHA256SUMS" % (product, new))
    verify = subprocess.run(["gpgv", "--keyring", str(keyring), str(sums) + ".sig", str(sums)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert verify.returncode == 0, verify.stderr
    check = subprocess.run(["sha256sum", "--strict", "-c", sums.name], cwd=directory, capture_output=True, text=True,
                           timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    with zipfile.ZipFile(directory / ("%s_%s_linux_amd64.zip" % (product, new))) as zf:
        zf.extract(product, tmp_path)
    exe = tmp_path / product
    exe.chmod(0o755)
    out = subprocess.run([str(exe), "version"], capture_output=True, text=True, timeout=120, check=True,
                         env=dict(os.environ, HOMELAB_SIM_UNPACK_DIR=str(tmp_path / "unpacked")))
    assert out.stdout.startswith("%s v%s " % (product.capitalize(), new)), out.stdout
    # the releases the mirror already had are unchanged
    assert (bumped / product / current[0]).is_dir()
    assert (bumped / "consul" / "index.json").read_text() == (base / "consul" / "index.json").read_text()
