"""What the upgrade playbook needs from the agents: snapshot save and restore, leader
status, version reporting, and state that survives a restart (Vault comes back sealed)."""

from __future__ import annotations

import json
import urllib.request

from tests.support.net import free_port, http


def _raw(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_vault_snapshot_restore_and_restart_sealed(agent_bin, procs, tmp_path):
    port = free_port()
    cfg = tmp_path / "vault.hcl"
    cfg.write_text('storage "raft" {\n  path = "%s"\n  node_id = "box"\n}\n'
                   'listener "tcp" {\n  address = "127.0.0.1:%d"\n  tls_disable = true\n}\n'
                   'cluster_addr = "https://127.0.0.1:%d"\ndisable_mlock = true\n' % (tmp_path / "raft", port,
                                                                                      free_port()))
    base = "http://127.0.0.1:%d/v1" % port

    def start():
        proc = procs([agent_bin / "vault", "server", "-config=%s" % cfg], tmp_path / "vault.log")
        proc.wait_http(base + "/sys/health", ok=(501, 503))
        return proc

    proc = start()
    status, init = http("PUT", base + "/sys/init", {"secret_shares": 3, "secret_threshold": 2})
    assert status == 200
    for key in init["keys"][1:]:
        http("PUT", base + "/sys/unseal", {"key": key})
    root = {"X-Vault-Token": init["root_token"]}
    assert http("POST", base + "/sys/mounts/kv", {"type": "kv", "options": {"version": "2"}}, root)[0] == 204
    assert http("POST", base + "/kv/data/app", {"data": {"v": "one"}}, root)[0] == 200
    status, leader = http("GET", base + "/sys/leader")
    assert status == 200 and leader["ha_enabled"] is False

    status, snapshot = _raw("GET", base + "/sys/storage/raft/snapshot", headers=root)
    assert status == 200 and len(snapshot) > 0
    assert http("POST", base + "/kv/data/app", {"data": {"v": "two"}}, root)[0] == 200
    octet = {**root, "Content-Type": "application/octet-stream"}
    status = _raw("POST", base + "/sys/storage/raft/snapshot", snapshot, octet)[0]
    assert status == 204
    assert http("GET", base + "/kv/data/app", headers=root)[1]["data"]["data"] == {"v": "one"}
    # A snapshot needs a token allowed to take it.
    assert _raw("GET", base + "/sys/storage/raft/snapshot")[0] == 403

    # Restarted: sealed, keeps its data, unseals with the same shares (any threshold of them).
    assert proc.stop() == 0
    start()
    status, health = http("GET", base + "/sys/health")
    assert status == 503 and health["sealed"] is True and health["initialized"] is True
    for key in init["keys"][:2]:
        status, seal = http("PUT", base + "/sys/unseal", {"key": key})
    assert seal["sealed"] is False
    assert http("GET", base + "/kv/data/app", headers=root)[1]["data"]["data"] == {"v": "one"}


def test_nomad_snapshot_restore_restart_and_versions(agent_bin, procs, tmp_path):
    port = free_port()
    conf = tmp_path / "nomad.hcl"
    conf.write_text('data_dir = "%s"\nbind_addr = "127.0.0.1"\nports {\n  http = %d\n}\n'
                    'server {\n  enabled = true\n  bootstrap_expect = 1\n}\nacl {\n  enabled = true\n}\n'
                    % (tmp_path / "data", port))
    base = "http://127.0.0.1:%d" % port

    def start():
        proc = procs([agent_bin / "nomad", "agent", "-config", conf], tmp_path / "nomad.log")
        proc.wait_http(base + "/v1/agent/health")
        return proc

    proc = start()
    status, token = http("POST", base + "/v1/acl/bootstrap")
    assert status == 200, token
    auth = {"X-Nomad-Token": token["SecretID"]}
    hcl = 'job "web" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n      config {\n' \
          '        image = "x"\n      }\n    }\n  }\n}\n'
    status, job = http("POST", base + "/v1/jobs/parse", {"JobHCL": hcl, "Canonicalize": True}, auth)
    assert http("PUT", base + "/v1/jobs", {"Job": job}, auth)[0] == 200
    status, leader = http("GET", base + "/v1/status/leader")
    assert status == 200 and leader.endswith(":4647")
    status, me = http("GET", base + "/v1/agent/self", headers=auth)
    assert me["config"]["Version"]["Version"].startswith("1.10.")

    assert _raw("GET", base + "/v1/operator/snapshot")[0] == 403
    status, snapshot = _raw("GET", base + "/v1/operator/snapshot", headers=auth)
    assert status == 200
    assert http("DELETE", base + "/v1/job/web?purge=true", headers=auth)[0] == 200
    assert http("GET", base + "/v1/job/web", headers=auth)[0] == 404
    assert _raw("PUT", base + "/v1/operator/snapshot", snapshot, auth)[0] == 200
    assert http("GET", base + "/v1/job/web", headers=auth)[0] == 200

    # Restarted: jobs and the ACL bootstrap are kept.
    assert proc.stop() == 0
    start()
    status, jobs = http("GET", base + "/v1/jobs", headers=auth)
    assert status == 200 and [j["ID"] for j in jobs] == ["web"]
    assert json.loads(json.dumps(http("POST", base + "/v1/acl/bootstrap")[1])) is not None
    assert http("POST", base + "/v1/acl/bootstrap")[0] == 400


REATTACH_JOB = '''
job "keeper" {
  datacenters = ["dc1"]
  group "g" {
    network {
      port "raw" {}
      port "box" {}
    }
    task "raw" {
      driver = "raw_exec"
      config {
        command = "%(python)s"
        args    = ["-m", "http.server", "-b", "127.0.0.1", "${NOMAD_PORT_raw}"]
      }
    }
    task "box" {
      driver = "docker"
      config {
        image        = "%(image)s"
        network_mode = "host"
        command      = "/bin/sh"
        args         = ["-c", "echo box >/tmp/index.html; exec httpd -f -p 127.0.0.1:${NOMAD_PORT_box} -h /tmp"]
      }
    }
  }
}
'''


def test_a_restarted_nomad_agent_reattaches_to_running_tasks(agent_bin, procs, tmp_path):
    """Like Nomad's client, the agent leaves raw_exec processes and docker containers running when it
    stops, and the next agent on the same data dir watches them again instead of marking them lost."""
    import sys

    from tests.support.process import wait

    from .conftest import STANDIN_IMAGE

    port = free_port()
    conf = tmp_path / "nomad.hcl"
    conf.write_text('data_dir = "%s"\nbind_addr = "127.0.0.1"\nports {\n  http = %d\n}\n'
                    'server {\n  enabled = true\n  bootstrap_expect = 1\n}\nclient {\n  enabled = true\n}\n'
                    'plugin "raw_exec" {\n  config {\n    enabled = true\n  }\n}\nplugin "docker" {}\n'
                    % (tmp_path / "data", port))
    base = "http://127.0.0.1:%d" % port

    def start():
        proc = procs([agent_bin / "nomad", "agent", "-config", conf], tmp_path / "nomad.log")
        proc.wait_http(base + "/v1/agent/health")
        return proc

    def answer(port):
        try:
            return http("GET", "http://127.0.0.1:%d/" % port, timeout=2)[0] == 200
        except OSError:
            return False

    agent = start()
    ports, alloc = {"raw": 0, "box": 0}, {"ID": "none"}
    try:
        hcl = REATTACH_JOB % {"python": sys.executable, "image": STANDIN_IMAGE}
        status, job = http("POST", base + "/v1/jobs/parse", {"JobHCL": hcl, "Canonicalize": True})
        assert status == 200, job
        assert http("PUT", base + "/v1/jobs", {"Job": job})[0] == 200
        alloc = wait(lambda: [a for a in http("GET", base + "/v1/job/keeper/allocations")[1]
                              if a["ClientStatus"] == "running"], what="running")[0]
        ports = {p["Label"]: p["Value"] for p in
                 http("GET", base + "/v1/allocation/" + alloc["ID"])[1]["AllocatedResources"]["Shared"]["Ports"]}
        wait(lambda: answer(ports["raw"]) and answer(ports["box"]), what="both tasks to answer")

        assert agent.stop() == 0
        assert answer(ports["raw"]) and answer(ports["box"])  # the tasks outlive the agent

        agent = start()
        allocs = http("GET", base + "/v1/job/keeper/allocations")[1]
        assert [(a["ID"], a["ClientStatus"]) for a in allocs] == [(alloc["ID"], "running")]
        states = http("GET", base + "/v1/allocation/" + alloc["ID"])[1]["TaskStates"]
        assert {t: s["State"] for t, s in states.items()} == {"raw": "running", "box": "running"}
        assert answer(ports["raw"]) and answer(ports["box"])
    finally:
        # Stopping the job stops the re-attached tasks.
        http("DELETE", base + "/v1/job/keeper?purge=true")
        wait(lambda: not answer(ports["raw"]) and not answer(ports["box"]), what="tasks to stop")
        import subprocess

        wait(lambda: subprocess.run(["docker", "ps", "-aq", "--filter", "label=com.hashicorp.nomad.alloc_id=%s"
                                     % alloc["ID"]], capture_output=True, text=True, check=False).stdout.strip() == "",
             what="container removal")
