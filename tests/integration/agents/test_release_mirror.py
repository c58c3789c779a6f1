"""The simulators packed as HashiCorp releases: verified the way a role verifies a
download (SHA256SUMS signed with the release key, the zip's hash in it), and the
unpacked `nomad` and `vault` executables start and answer."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from tests.support.net import free_port, http

PRODUCTS = ("nomad", "vault")


def _release(mirror, product):
    index = json.loads((mirror / product / "index.json").read_text())
    (version, release), = index["versions"].items()
    return version, mirror / product / version, release


def _gpg(home, *args):
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", *args], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def keyring(release_mirror, tmp_path):
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    imported = _gpg(home, "--import", str(release_mirror / "release-signing-key.asc"))
    assert imported.returncode == 0, imported.stderr
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True)


@pytest.mark.parametrize("product", PRODUCTS)
def test_release_is_laid_out_signed_and_checksummed_like_hashicorps(release_mirror, keyring, tmp_path, product):
    version, directory, release = _release(release_mirror, product)
    zip_name = "%s_%s_linux_amd64.zip" % (product, version)
    sums = directory / release["shasums"]
    assert release["shasums"] == "%s_%s_SHA256SUMS" % (product, version)
    assert [b["filename"] for b in release["builds"]] == [zip_name]

    verified = _gpg(keyring, "--verify", str(directory / release["shasums_signature"]), str(sums))
    assert verified.returncode == 0, verified.stderr
    assert "Good signature" in verified.stderr

    lines = dict(reversed(line.split("  ", 1)) for line in sums.read_text().splitlines())
    assert lines[zip_name] == hashlib.sha256((directory / zip_name).read_bytes()).hexdigest()

    # Signature checking can fail: a changed SHA256SUMS no longer verifies.
    tampered = tmp_path / sums.name
    tampered.write_text(sums.read_text().replace(lines[zip_name][:8], "00000000"))
    refused = _gpg(keyring, "--verify", str(directory / release["shasums_signature"]), str(tampered))
    assert refused.returncode != 0
    assert "BAD signature" in refused.stderr


@pytest.mark.parametrize("product", PRODUCTS)
def test_unknown_key_does_not_verify(release_mirror, tmp_path, product):
    """Without the test key imported, gpg refuses: the key really is what makes it pass."""
    home = tmp_path / "empty"
    home.mkdir(mode=0o700)
    _version, directory, release = _release(release_mirror, product)
    result = _gpg(home, "--verify", str(directory / release["shasums_signature"]), str(directory / release["shasums"]))
    assert result.returncode != 0
    assert "No public key" in result.stderr


def test_unpacked_nomad_starts_from_a_config_dir_and_answers(agent_bin, procs, tmp_path):
    version = subprocess.run([str(agent_bin / "nomad"), "version"], capture_output=True, text=True, timeout=30,
                             check=False)
    assert version.returncode == 0 and version.stdout.startswith("Nomad v1.10."), version
    port = free_port()
    conf = tmp_path / "nomad.d"
    conf.mkdir()
    (conf / "nomad.hcl").write_text(
        'data_dir = "%s"\nbind_addr = "127.0.0.1"\ndisable_update_check = true\n'
        'ports {\n  http = %d\n}\nserver {\n  enabled = true\n  bootstrap_expect = 1\n}\n'
        'client {\n  enabled = true\n}\n' % (tmp_path / "data", port))
    proc = procs([agent_bin / "nomad", "agent", "-config", conf], tmp_path / "nomad.log")
    base = "http://127.0.0.1:%d" % port
    proc.wait_http(base + "/v1/agent/health")
    status, leader = http("GET", base + "/v1/status/leader")
    assert status == 200 and leader
    status, me = http("GET", base + "/v1/agent/self")
    assert status == 200 and me["config"]["Version"]["Version"] == version.stdout.split()[1][1:]


def test_unpacked_vault_starts_sealed_from_a_config_file_and_unseals(agent_bin, procs, tmp_path):
    version = subprocess.run([str(agent_bin / "vault"), "version"], capture_output=True, text=True, timeout=30,
                             check=False)
    assert version.returncode == 0 and version.stdout.startswith("Vault v1.18."), version
    port = free_port()
    cfg = tmp_path / "vault.hcl"
    cfg.write_text('storage "raft" {\n  path = "%s"\n  node_id = "n1"\n}\n'
                   'listener "tcp" {\n  address = "127.0.0.1:%d"\n  tls_disable = true\n}\n'
                   'api_addr = "http://127.0.0.1:%d"\ncluster_addr = "http://127.0.0.1:%d"\n'
                   'disable_mlock = true\nui = false\n' % (tmp_path / "raft", port, port, free_port()))
    proc = procs([agent_bin / "vault", "server", "-config=%s" % cfg], tmp_path / "vault.log")
    base = "http://127.0.0.1:%d/v1" % port
    proc.wait_http(base + "/sys/health", ok=(501,))
    status, init = http("PUT", base + "/sys/init", {"secret_shares": 3, "secret_threshold": 2})
    assert status == 200, init
    for key in init["keys"][:2]:
        status, seal = http("PUT", base + "/sys/unseal", {"key": key})
    assert status == 200 and seal["sealed"] is False
    status, health = http("GET", base + "/sys/health")
    assert status == 200 and health["version"] == version.stdout.split()[1][1:]


@pytest.mark.parametrize("product", PRODUCTS)
def test_executables_carry_their_dependencies(agent_bin, tmp_path, product):
    """Run without any site-packages (python -S): everything the agent imports is inside the executable."""
    result = subprocess.run([sys.executable, "-S", str(agent_bin / product), "version"], capture_output=True,
                            text=True, timeout=60, check=False,
                            env={"PATH": "/usr/bin:/bin", "HOMELAB_SIM_UNPACK_DIR": str(tmp_path / "unpack")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("%s v" % product.capitalize())
