"""selfhost.homelab.nomad_job and nomad_job_info over real HTTP (simulator, or a real Nomad via NOMAD_ADDR)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
if HERE not in sys.path:  # works with pytest's prepend and importlib import modes alike
    sys.path.insert(0, HERE)

from nomad_jobfiles import ORIGINAL_PORT_MAP_HCL, PERIODIC_HCL, dict_job, web_hcl  # noqa: E402


def _exists(job_info, job_id):
    return job_info(name=job_id)["exists"]


def test_hcl_check_apply_idempotent_diff_remove(run_job, job_info, job_id, nomad):
    hcl = web_hcl(job_id)
    res = run_job(check=True, content=hcl)
    assert res["_rc"] == 0, res
    assert res["changed"] is True and res["diff_type"] == "Added"
    assert not _exists(job_info, job_id), "check mode must not register"

    res = run_job(content=hcl)
    assert res["changed"] is True and res["eval_id"]
    info = job_info(name=job_id)
    assert info["exists"] and info["job"]["Version"] == 0
    task = info["job"]["TaskGroups"][0]["Tasks"][0]
    assert task["Config"]["image"] == "traefik/whoami:v1.10"
    # Nomad >= 1.7 gives every task its default workload identity, and the vault task one for Vault.
    assert task["Identity"]["Name"] == "default"
    assert "vault_default" in [i["Name"] for i in task.get("Identities") or []]

    res = run_job(content=hcl)
    assert res["changed"] is False and res["diff_type"] == "None"
    assert "eval_id" not in res

    res = run_job(check=True, diff=True, content=hcl, variables={"image": "traefik/whoami:v1.11"})
    assert res["changed"] is True and res["diff_type"] == "Edited"
    assert "image: traefik/whoami:v1.10" in res["diff"]["before"]
    assert "image: traefik/whoami:v1.11" in res["diff"]["after"]
    assert any(c.endswith("image: traefik/whoami:v1.10 => traefik/whoami:v1.11") for c in res["changes"])
    assert job_info(name=job_id)["job"]["Version"] == 0, "check mode must not register"

    res = run_job(content=hcl, variables={"image": "traefik/whoami:v1.11"})
    assert res["changed"] is True
    assert job_info(name=job_id)["job"]["Version"] == 1

    res = run_job(check=True, name=job_id, state="absent")
    assert res["changed"] is True
    assert not job_info(name=job_id)["job"]["Stop"]
    res = run_job(name=job_id, state="absent")
    assert res["changed"] is True
    assert job_info(name=job_id)["job"]["Stop"] is True
    assert run_job(name=job_id, state="absent")["changed"] is False
    res = run_job(name=job_id, state="absent", purge=True, diff=True)
    assert res["changed"] is True and res["diff"]["after"] == ""
    assert not _exists(job_info, job_id)
    res = run_job(name=job_id, state="absent", purge=True)
    assert res["_rc"] == 0 and res["changed"] is False


def test_json_and_dict_jobs(run_job, job_info, job_id):
    job = dict_job(job_id)
    res = run_job(content=job)
    assert res["changed"] is True, res
    assert run_job(content={"Job": job})["changed"] is False
    assert run_job(content=json.dumps(job), content_format="json")["changed"] is False
    res = run_job(content=json.dumps(dict_job(job_id, image="traefik/whoami:v1.11")), diff=True)
    assert res["changed"] is True and "v1.11" in res["diff"]["after"]
    assert job_info(name=job_id)["job"]["Version"] == 1
    assert run_job(name=job_id, state="absent", purge=True)["changed"] is True


def test_wait_until_healthy_and_info(run_job, job_info, job_id):
    res = run_job(content=web_hcl(job_id), wait=True, wait_timeout=60)
    assert res["_rc"] == 0, res
    assert res["deployment"]["Status"] == "successful"
    info = job_info(name=job_id)
    assert info["deployment"]["Status"] == "successful"
    assert [a["ClientStatus"] for a in info["allocations"]] == ["running"]
    listed = job_info(prefix=job_id)["jobs"]
    assert [j["ID"] for j in listed] == [job_id]
    run_job(name=job_id, state="absent", purge=True)


@pytest.mark.simulator_only
def test_wait_reports_failed_allocations(run_job, job_id, nomad):
    nomad.set_outcome("failed", job_id)
    res = run_job(content=web_hcl(job_id), wait=True, wait_timeout=30)
    assert res["_rc"] != 0 and res["failed"]
    assert "\n" not in res["msg"]
    assert "failed: Failed due to unhealthy allocations" in res["msg"]
    assert "task whoami: " in res["msg"] and "Simulated task failure" in res["msg"]


@pytest.mark.simulator_only
def test_wait_times_out(run_job, job_id, nomad):
    nomad.set_outcome("pending", job_id)
    start = time.monotonic()
    res = run_job(content=web_hcl(job_id), wait=True, wait_timeout=2)
    assert res["_rc"] != 0 and "timed out after 2s" in res["msg"]
    assert time.monotonic() - start < 15


def test_periodic_batch_registers_without_waiting(run_job, job_info, job_id):
    hcl = PERIODIC_HCL % job_id
    res = run_job(content=hcl, wait=True, wait_timeout=5)
    assert res["_rc"] == 0 and res["changed"] is True, res
    assert "deployment" not in res
    job = job_info(name=job_id)["job"]
    assert job["Periodic"]["Specs"] == ["0 21 * * *"] and job["Type"] == "batch"
    assert job["TaskGroups"][0]["Tasks"][0]["Constraints"][0]["LTarget"] == "${attr.kernel.name}"
    assert run_job(content=hcl)["changed"] is False
    run_job(name=job_id, state="absent", purge=True)


def _fails_cleanly(res, *fragments):
    assert res["_rc"] != 0 and res.get("failed"), res
    assert "\n" not in res["msg"], res["msg"]
    for fragment in fragments:
        assert fragment in res["msg"], res["msg"]


def test_bad_input_fails_before_any_change(run_job, job_info, job_id, nomad):
    broken = web_hcl(job_id).replace('driver = "docker"', 'driver = ', 1)
    _fails_cleanly(run_job(content=broken), "parse job HCL: HTTP 400", "input.hcl:")
    _fails_cleanly(run_job(content=web_hcl(job_id), name=job_id + "-other"), "name:", "differs")
    two = web_hcl(job_id) + web_hcl(job_id + "-b")
    _fails_cleanly(run_job(content=two), "HTTP 400", "job")
    _fails_cleanly(run_job(content=web_hcl(job_id), variables={"undeclared": "x"}), "HTTP 400", "undeclared")
    _fails_cleanly(run_job(content=web_hcl(job_id), variables={"image": "x"}, content_format="json"), "content:")
    assert not _exists(job_info, job_id) and not _exists(job_info, job_id + "-b")


def test_original_task_network_syntax_is_rejected(run_job, job_info, job_id):
    res = run_job(content=ORIGINAL_PORT_MAP_HCL % job_id)
    _fails_cleanly(res, "HTTP 400", 'Blocks of type "network" are not expected here')
    assert not _exists(job_info, job_id)


@pytest.mark.simulator_only
def test_port_map_fails_in_the_docker_driver(run_job, job_id):
    hcl = web_hcl(job_id).replace('ports = ["http"]', 'port_map = { http = 80 }')
    res = run_job(content=hcl, wait=True, wait_timeout=30)
    _fails_cleanly(res, "'port_map' cannot map group network ports, use 'ports' instead")


def test_wrong_token_is_refused(nomad, job_id, run_module):
    if not nomad.token:
        pytest.skip("this Nomad runs without ACLs")
    wrong = {"address": nomad.address, "token": "00000000-0000-0000-0000-000000000000", "content": web_hcl(job_id)}
    res = run_module("nomad_job", wrong)
    _fails_cleanly(res, "HTTP 403", "check the token")
    res = run_module("nomad_job", {"address": nomad.address, "content": web_hcl(job_id)})
    _fails_cleanly(res, "HTTP 403")


def test_unreachable_server(job_id, run_module):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    res = run_module("nomad_job", {"address": "http://127.0.0.1:%d" % port, "content": web_hcl(job_id), "timeout": 3})
    _fails_cleanly(res, "cannot reach Nomad at http://127.0.0.1:%d" % port)


def test_playbook_module_defaults_group(nomad, job_id, tmp_path):
    """The action group: connection set once; check -> apply -> idempotent -> remove, as Ansible runs it."""
    job_file = tmp_path / "job.nomad.hcl"
    job_file.write_text(web_hcl(job_id))
    defaults = {"address": nomad.address}
    if nomad.token:
        defaults["token"] = nomad.token
    play = [{
        "name": "Nomad job lifecycle", "hosts": "localhost", "gather_facts": False,
        "module_defaults": {"group/selfhost.homelab.nomad": defaults},
        "tasks": [
            {"name": "Plan in check mode", "check_mode": True, "register": "__plan",
             "selfhost.homelab.nomad_job": {"content": "{{ lookup('ansible.builtin.file', '%s') }}" % job_file}},
            {"name": "Apply", "register": "__apply",
             "selfhost.homelab.nomad_job": {"content": "{{ lookup('ansible.builtin.file', '%s') }}" % job_file,
                                            "wait": True, "wait_timeout": 60}},
            {"name": "Apply again", "register": "__again",
             "selfhost.homelab.nomad_job": {"content": "{{ lookup('ansible.builtin.file', '%s') }}" % job_file}},
            {"name": "Read", "register": "__info", "selfhost.homelab.nomad_job_info": {"name": job_id}},
            {"name": "Remove", "register": "__rm",
             "selfhost.homelab.nomad_job": {"name": job_id, "state": "absent", "purge": True}},
            {"name": "Check the results", "ansible.builtin.assert": {"that": [
                "__plan is changed", "__apply is changed", "__again is not changed",
                "__info.exists", "__rm is changed"]}},
        ],
    }]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, str(playbook)],
                          capture_output=True, text=True, timeout=180, cwd=REPO, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.simulator_only
def test_tls_ca_and_client_certificate(tls_nomad, run_module, job_id):
    address, pki = tls_nomad
    tls = {"ca_cert": pki["ca.pem"], "client_cert": pki["client.pem"], "client_key": pki["client-key.pem"]}
    res = run_module("nomad_job_info", {"address": address, "name": job_id, **tls})
    assert res["_rc"] == 0 and res["exists"] is False, res
    res = run_module("nomad_job", {"address": address, "content": dict_job(job_id), **tls})
    assert res["_rc"] == 0 and res["changed"] is True, res
    env = {"NOMAD_ADDR": address, "NOMAD_CACERT": pki["ca.pem"], "NOMAD_CLIENT_CERT": pki["client.pem"],
           "NOMAD_CLIENT_KEY": pki["client-key.pem"]}
    res = run_module("nomad_job_info", {"name": job_id}, env=env)
    assert res["_rc"] == 0 and res["exists"] is True, res
    no_client_cert = {k: v for k, v in tls.items() if k == "ca_cert"}
    _fails_cleanly(run_module("nomad_job_info", {"address": address, "name": job_id, **no_client_cert}),
                   "cannot reach Nomad at " + address)
    _fails_cleanly(run_module("nomad_job_info", {"address": address, "name": job_id}),
                   "cannot reach Nomad at " + address, "CERTIFICATE_VERIFY_FAILED")
