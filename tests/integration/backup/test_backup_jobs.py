"""The rendered backup jobs run for real: the Nomad simulator (a client with raw_exec) runs them as processes,
renders each task's Vault template with a token from a JWT login with the task's workload identity (the Vault
simulator), and the task runs the real program with real restic against a local and an S3 (moto) repository.

Submission goes through the nomad_job module, as the role does (second submission: changed=false)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from ansible_collections.selfhost.homelab.plugins.filter.backup_plan import backup_plan
from backup_it import PROGRAM, parse_metrics
from restic_it import BINARIES, PASSWORD, S3_KEY_ID, S3_SECRET, free_port, stop, wait_port, write_tree

from tests.support.net import http

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RESTIC = BINARIES["0.18"]


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Vault and Nomad simulators as processes on free loopback ports (no Consul: the jobs have no services)."""
    tmp = tmp_path_factory.mktemp("backup-stack")
    nomad_port, vault_port = free_port(), free_port()
    vault_addr, nomad_addr = "http://127.0.0.1:%d" % vault_port, "http://127.0.0.1:%d" % nomad_port
    (tmp / "nomad.d").mkdir()
    (tmp / "nomad.d" / "nomad.hcl").write_text('''
data_dir = "%s"
bind_addr = "127.0.0.1"
disable_update_check = true
ports {
  http = %d
}
server {
  enabled = true
  bootstrap_expect = 1
}
client {
  enabled = true
}
vault {
  enabled = true
  address = "%s"
  jwt_auth_backend_path = "jwt-nomad"
  default_identity {
    aud = ["vault.io"]
    ttl = "1h"
  }
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
''' % (tmp / "nomad-data", nomad_port, vault_addr))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "AWS_", "B2_"))}
    procs = []
    logs = []
    try:
        for name, argv in (
            ("vault", [sys.executable, "-m", "tests.simulators.vault", "server", "-dev", "-dev-root-token-id=root",
                       "-dev-listen-address=127.0.0.1:%d" % vault_port]),
            ("nomad", [sys.executable, "-m", "tests.simulators.nomad", "agent", "-config", str(tmp / "nomad.d")]),
        ):
            log = open(tmp / ("%s.log" % name), "wb")  # noqa: SIM115 - closed below
            logs.append(log)
            procs.append(subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        wait_port(vault_port, procs[0])
        wait_port(nomad_port, procs[1])
        yield {"vault": vault_addr, "nomad": nomad_addr, "tmp": tmp}
    finally:
        for proc in reversed(procs):
            stop(proc)
        for log in logs:
            log.close()


def run_module(name, args, tmp):
    argsfile = tmp / ("%s-args.json" % name)
    argsfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO_ROOT, ".cache", "collections"),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.selfhost.homelab.plugins.modules." + name,
                           str(argsfile)], capture_output=True, text=True, env=env, timeout=120, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module printed no JSON: %s\n%s" % (proc.stdout, proc.stderr))


def force_and_wait(stack, job_id):
    """periodic/force, then wait until the child's allocations end; returns them."""
    status, out = http("POST", "%s/v1/job/%s/periodic/force" % (stack["nomad"], job_id))
    assert status == 200, out

    def done():
        status, jobs = http("GET", stack["nomad"] + "/v1/jobs")
        children = sorted((j for j in jobs if j.get("ParentID") == job_id), key=lambda j: j["ID"])
        if not children:
            return None
        allocs = [a for a in http("GET", stack["nomad"] + "/v1/allocations")[1]
                  if a["JobID"] == children[-1]["ID"]]
        if allocs and all(a["ClientStatus"] in ("complete", "failed") for a in allocs):
            return allocs
        return None

    try:
        return wait_for(done, what="the forced run of %s" % job_id)
    except AssertionError as exc:
        jobs = http("GET", stack["nomad"] + "/v1/jobs")[1]
        allocs = http("GET", stack["nomad"] + "/v1/allocations")[1]
        log = (stack["tmp"] / "nomad.log").read_text(errors="replace")[-3000:]
        raise AssertionError("%s\njobs: %r\nallocations: %r\nnomad log: %s" % (exc, jobs, allocs, log))


def task_log(stack, alloc, task):
    path = os.path.join(str(stack["tmp"] / "nomad-data"), "alloc", alloc["ID"], "alloc", "logs",
                        "%s.stderr.0" % task)
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return "(no log at %s)" % path


def test_jobs_run_the_program_with_secrets_from_vault(stack, s3_server, src_root, data_root):
    name = "jobs%d" % os.getpid()
    src = os.path.join(src_root, name, "data")
    os.makedirs(src)
    write_tree(src, seed=3)
    with open(os.path.join(src, "photo.raw"), "wb") as fh:
        fh.write(os.urandom(200 * 1024))
    fast = os.path.join(data_root, "repos", name)
    os.makedirs(fast)
    local = os.path.join(fast, "local")
    s3_url = "s3:http://127.0.0.1:%d/%s/%s" % (s3_server["port"], s3_server["bucket"], name)
    settings = {
        "repositories": [{"name": "usb", "url": local},
                         {"name": "offsite", "url": s3_url, "region": "us-east-1"}],
        "sets": [{"name": "photos", "paths": [src]}],
        "retention": {"keep_last": 2},
        "mount": "kv", "host": "it-host", "program": PROGRAM, "python": sys.executable, "restic": RESTIC,
        "config_dir": os.path.join(fast, "etc"), "state_dir": os.path.join(fast, "state"),
        "cache_dir": os.path.join(fast, "cache"), "scratch_dir": os.path.join(fast, "scratch"),
        "textfile_dir": os.path.join(fast, "textfile"), "datacenters": ["dc1"], "lock_wait": 60,
    }
    plan = backup_plan(settings)
    os.makedirs(settings["config_dir"])
    for bset in plan["sets"]:
        with open(bset["config_path"], "w") as fh:
            json.dump(bset["config"], fh)
    (photos,) = plan["sets"]
    assert photos["fields"] == ["offsite_aws_access_key_id", "offsite_aws_secret_access_key", "restic_password"]

    # Vault as the vault role leaves it: KV v2, the set's secret, each job's policy and JWT role.
    vault, root = stack["vault"] + "/v1/", {"X-Vault-Token": "root"}
    assert http("POST", vault + "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}}, root)[0] == 204
    secret = {"restic_password": PASSWORD, "offsite_aws_access_key_id": S3_KEY_ID,
              "offsite_aws_secret_access_key": S3_SECRET}
    assert http("POST", vault + "kv/data/backup-photos", {"data": secret}, root)[0] == 200
    assert http("POST", vault + "sys/auth/jwt-nomad", {"type": "jwt"}, root)[0] == 204
    assert http("POST", vault + "auth/jwt-nomad/config",
                {"jwks_url": stack["nomad"] + "/.well-known/jwks.json", "jwt_supported_algs": ["RS256"]},
                root)[0] == 204
    for item in plan["vault"]:
        assert http("POST", vault + "sys/policies/acl/" + item["name"], {"policy": item["policy"]}, root)[0] == 204
        assert http("POST", vault + "auth/jwt-nomad/role/" + item["name"], item["jwt_role"], root)[0] == 204

    # The repositories, initialised by restic_repo as the role does.
    for init in plan["init"]:
        args = {"action": "init", "repository": init["url"], "binary": RESTIC, "password": PASSWORD,
                "cache_dir": settings["cache_dir"]}
        if init["env"]:
            args.update(aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET,
                        aws_default_region="us-east-1")
        result = run_module("restic_repo", args, stack["tmp"])
        assert result.get("changed") is True, result

    # Submit as the role does; twice: the second submission changes nothing.
    for attempt in (1, 2):
        for job in plan["jobs"]:
            result = run_module("nomad_job", {"address": stack["nomad"], "content": job}, stack["tmp"])
            assert not result.get("failed"), result
            assert result["changed"] is (attempt == 1), (attempt, job["ID"], result)
    status, job = http("GET", stack["nomad"] + "/v1/job/backup-photos")
    assert job["Periodic"]["Spec"] == "0 21 * * *" and job["Periodic"]["ProhibitOverlap"] is True

    allocs = force_and_wait(stack, "backup-photos")
    assert [a["ClientStatus"] for a in allocs] == ["complete"], task_log(stack, allocs[0], "backup")
    log = task_log(stack, allocs[0], "backup")
    assert "backup photos: done" in log
    assert PASSWORD not in log and S3_SECRET not in log
    with open(os.path.join(settings["textfile_dir"], "homelab_backup_photos.prom")) as fh:
        metrics = parse_metrics(fh.read())
    for repo in ("usb", "offsite"):
        assert metrics[("homelab_backup_last_run_success", repo)] == 1
        assert time.time() - metrics[("homelab_backup_last_success_timestamp_seconds", repo)] < 300

    allocs = force_and_wait(stack, "restore-drill")
    assert [a["ClientStatus"] for a in allocs] == ["complete"], task_log(stack, allocs[0], "drill")
    with open(os.path.join(settings["textfile_dir"], "homelab_backup_photos.prom")) as fh:
        metrics = parse_metrics(fh.read())
    assert metrics[("homelab_restore_drill_success", "usb")] == 1
    assert metrics[("homelab_restore_drill_success", "offsite")] == 1

    allocs = force_and_wait(stack, "backup-photos-retention")
    assert [a["ClientStatus"] for a in allocs] == ["complete"], task_log(stack, allocs[0], "retention")

    # A drill that fails shows as a failed allocation, and in the metric.
    packs = [os.path.join(d, f) for d, _s, fs in os.walk(os.path.join(local, "data")) for f in fs]
    victim = max(packs, key=os.path.getsize)
    data = bytearray(open(victim, "rb").read())
    data[len(data) // 2] ^= 0xFF
    os.chmod(victim, 0o644)
    with open(victim, "wb") as fh:
        fh.write(data)
    allocs = force_and_wait(stack, "restore-drill")
    assert [a["ClientStatus"] for a in allocs] == ["failed"]
    assert "FAILED" in task_log(stack, allocs[0], "drill")
    with open(os.path.join(settings["textfile_dir"], "homelab_backup_photos.prom")) as fh:
        metrics = parse_metrics(fh.read())
    assert metrics[("homelab_restore_drill_success", "usb")] == 0
    assert metrics[("homelab_restore_drill_success", "offsite")] == 1
