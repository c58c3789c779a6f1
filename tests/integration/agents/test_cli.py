"""The `vault` and `nomad` CLI subcommands roles may call, run as the release-mirror
executables against running agents: output and exit codes as the real CLIs document them
(vault: 0 ok, 1 local error, 2 API error or sealed for `status`; nomad: 0 ok, 1 error)."""

from __future__ import annotations

import json
import os
import subprocess

from tests.support.net import free_port, http


def _cli(exe, *args, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "NOMAD_"))}
    full.update(env or {})
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=60, env=full,
                          check=False)


def _table(text):
    """Vault's Key/Value table as a dict."""
    lines = text.splitlines()
    assert lines[0].split() == ["Key", "Value"] and lines[1].split() == ["---", "-----"], text
    return dict(line.split(None, 1) if "  " not in line else [p.strip() for p in line.split("  ", 1)]
                for line in lines[2:])


def test_vault_status_init_and_unseal(agent_bin, procs, tmp_path):
    port = free_port()
    cfg = tmp_path / "vault.hcl"
    cfg.write_text('storage "raft" {\n  path = "%s"\n  node_id = "box"\n}\n'
                   'listener "tcp" {\n  address = "127.0.0.1:%d"\n  tls_disable = true\n}\n'
                   'cluster_addr = "https://127.0.0.1:%d"\ndisable_mlock = true\n'
                   % (tmp_path / "raft", port, free_port()))
    proc = procs([agent_bin / "vault", "server", "-config=%s" % cfg], tmp_path / "vault.log")
    proc.wait_http("http://127.0.0.1:%d/v1/sys/health" % port, ok=(501,))
    env = {"VAULT_ADDR": "http://127.0.0.1:%d" % port}
    vault = agent_bin / "vault"

    out = _cli(vault, "status", env=env)
    assert out.returncode == 2, out
    table = _table(out.stdout)
    assert (table["Initialized"], table["Sealed"], table["Storage Type"]) == ("false", "true", "raft")
    assert _cli(vault, "operator", "init", "-status", env=env).returncode == 2

    out = _cli(vault, "operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json", env=env)
    assert out.returncode == 0, out
    init = json.loads(out.stdout)
    assert (init["unseal_shares"], init["unseal_threshold"], len(init["unseal_keys_b64"])) == (3, 2, 3)
    assert init["root_token"].startswith("hvs.")
    assert _cli(vault, "operator", "init", "-status", env=env).returncode == 0

    out = _cli(vault, "operator", "init", env=env)  # a second init is Vault's 400
    assert out.returncode == 2
    assert "Error initializing: Error making API request." in out.stderr
    assert "Code: 400" in out.stderr and "* Vault is already initialized" in out.stderr

    out = _cli(vault, "status", env=env)
    assert out.returncode == 2 and _table(out.stdout)["Unseal Progress"] == "0/2", out.stdout
    out = _cli(vault, "operator", "unseal", init["unseal_keys_b64"][2], env=env)
    assert out.returncode == 0 and _table(out.stdout)["Unseal Progress"] == "1/2", out.stdout
    out = _cli(vault, "operator", "unseal", "-format=json", init["unseal_keys_hex"][0], env=env)
    assert out.returncode == 0 and json.loads(out.stdout)["sealed"] is False

    out = _cli(vault, "status", "-format=json", env=env)
    assert out.returncode == 0
    assert json.loads(out.stdout)["sealed"] is False and json.loads(out.stdout)["t"] == 2
    out = _cli(vault, "status", "-address=http://127.0.0.1:%d" % port)
    assert out.returncode == 0 and _table(out.stdout)["Sealed"] == "false"

    # No server answering: a local error, exit 1.
    assert _cli(vault, "status", env={"VAULT_ADDR": "http://127.0.0.1:%d" % free_port()}).returncode == 1
    assert _cli(vault, "status", "-nonsense", env=env).returncode == 1


def test_nomad_acl_bootstrap_status_peers_and_snapshots(agent_bin, procs, tmp_path):
    port = free_port()
    conf = tmp_path / "nomad.hcl"
    conf.write_text('data_dir = "%s"\nbind_addr = "127.0.0.1"\nports {\n  http = %d\n}\n'
                    'server {\n  enabled = true\n  bootstrap_expect = 1\n}\nacl {\n  enabled = true\n}\n'
                    % (tmp_path / "data", port))
    base = "http://127.0.0.1:%d" % port
    procs([agent_bin / "nomad", "agent", "-config", conf], tmp_path / "nomad.log").wait_http(base + "/v1/agent/health")
    nomad = agent_bin / "nomad"
    env = {"NOMAD_ADDR": base}

    out = _cli(nomad, "acl", "bootstrap", "-json", env=env)
    assert out.returncode == 0, out
    token = json.loads(out.stdout)
    assert token["Type"] == "management" and token["Name"] == "Bootstrap Token"
    out = _cli(nomad, "acl", "bootstrap", env=env)
    assert out.returncode == 1
    assert out.stderr.startswith("Error bootstrapping: Unexpected response code: 400 (ACL bootstrap already done")

    out = _cli(nomad, "status", env=env)  # no token: ACLs refuse
    assert out.returncode == 1 and "Unexpected response code: 403 (Permission denied)" in out.stderr
    env["NOMAD_TOKEN"] = token["SecretID"]
    out = _cli(nomad, "status", env=env)
    assert (out.returncode, out.stdout) == (0, "No running jobs\n")

    hcl = 'job "web" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n      config {\n' \
          '        image = "x"\n      }\n    }\n  }\n}\n'
    auth = {"X-Nomad-Token": token["SecretID"]}
    job = http("POST", base + "/v1/jobs/parse", {"JobHCL": hcl, "Canonicalize": True}, auth)[1]
    assert http("PUT", base + "/v1/jobs", {"Job": job}, auth)[0] == 200
    out = _cli(nomad, "status", env=env)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and lines[0].split() == ["ID", "Type", "Priority", "Status", "Submit", "Date"]
    assert lines[1].split()[:3] == ["web", "service", "50"]
    out = _cli(nomad, "status", "web", env=env)
    assert out.returncode == 0 and "ID            = web" in out.stdout and "Allocations" in out.stdout
    out = _cli(nomad, "status", "nope", env=env)
    assert out.returncode == 1 and 'No job(s) with prefix or ID "nope" found' in out.stderr

    out = _cli(nomad, "operator", "raft", "list-peers", env=env)
    assert out.returncode == 0, out
    header, peer = out.stdout.splitlines()
    assert header.split() == ["Node", "ID", "Address", "State", "Voter", "RaftProtocol"]
    assert peer.split()[2:] == ["127.0.0.1:4647", "leader", "true", "3"]

    snap = tmp_path / "nomad.snap"
    out = _cli(nomad, "operator", "snapshot", "save", snap, env=env)
    assert (out.returncode, out.stdout) == (0, "State file written to %s\n" % snap)
    assert http("DELETE", base + "/v1/job/web?purge=true", headers=auth)[0] == 200
    out = _cli(nomad, "operator", "snapshot", "restore", snap, env=env)
    assert (out.returncode, out.stdout) == (0, "Snapshot Restored\n")
    assert http("GET", base + "/v1/job/web", headers=auth)[0] == 200
    assert _cli(nomad, "operator", "snapshot", "restore", tmp_path / "missing", env=env).returncode == 1
