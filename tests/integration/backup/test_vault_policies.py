"""The vault role writes the backup jobs' Vault policies and JWT roles (DESIGN.md: the vault role owns them).

site.yml runs the vault role (HashiCorp layer) before the backup role (platform layer), so the vault
role computes the backup jobs from the same inventory through the backup_vault filter. Here the vault
role's secrets tasks run against the Vault simulator on loopback with a backup inventory, then the
backup role's preflight builds its plan from the same inventory, and the play asserts that Vault now
holds exactly the policies and JWT roles the plan's jobs use. A second run changes nothing; a third, after
a role's token_period was changed in Vault, puts it back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import requests

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


@pytest.fixture(scope="module")
def vault_sim():
    from tests.simulators.vault import start_dev

    sim = start_dev(root_token="root-" + uuid.uuid4().hex)
    try:
        yield sim
    finally:
        sim.stop()


def _play(sim, src):
    port = int(sim.address.rsplit(":", 1)[1])
    inventory = {
        "vault_tls_disable": True,
        "vault_port": port,
        "vault_nomad_jwks_url": "http://127.0.0.1:4646/.well-known/jwks.json",
        "homelab_bootstrap": {"vault": {"root_token": sim.app.dev_root_token}},
        "homelab_vault_kv_mount": "kv",
        "homelab_secrets": {"backup-apps": {"restic_password": "pw-apps"},
                            "backup-etc": {"restic_password": "pw-etc"}},
        # The backup inventory both roles read.
        "backup_repositories": [{"name": "usb", "url": "/mnt/usb/restic"}],
        "backup_sets": [{"name": "apps", "paths": [src]}],
        "backup_sets_host": [{"name": "etc", "paths": [src], "drill": False}],
        "backup_init_repositories": False,
        "ansible_python_interpreter": sys.executable,
    }
    check = [
        {"name": "Build the backup plan as the backup role does",
         "ansible.builtin.include_role": {"name": "selfhost.homelab.backup", "tasks_from": "preflight.yml"}},
        {"name": "Read the policies of the plan's jobs",
         "ansible.builtin.uri": {"url": "http://127.0.0.1:%d/v1/sys/policies/acl/{{ item.name }}" % port,
                                 "headers": {"X-Vault-Token": sim.app.dev_root_token}},
         "loop": "{{ backup_vault_jobs }}", "register": "__policies"},
        {"name": "Read the JWT roles of the plan's jobs",
         "ansible.builtin.uri": {"url": "http://127.0.0.1:%d/v1/auth/jwt-nomad/role/{{ item.name }}" % port,
                                 "headers": {"X-Vault-Token": sim.app.dev_root_token}},
         "loop": "{{ backup_vault_jobs }}", "register": "__roles"},
        {"name": "Report",
         "ansible.builtin.debug": {"msg": "{{ {'plan': backup_vault_jobs, 'policies': __policies.results "
                                          "| map(attribute='json.data.policy') | list, 'roles': __roles.results "
                                          "| map(attribute='json.data') | list} | to_json }}"}},
    ]
    play = [
        {"name": "The vault role's secrets tasks", "hosts": "localhost", "gather_facts": False,
         "tasks": [{"name": "Configure Vault", "ansible.builtin.include_role": {
             "name": "selfhost.homelab.vault", "tasks_from": "secrets.yml"}}]},
        {"name": "The backup role's plan", "hosts": "localhost", "gather_facts": False, "tasks": check},
    ]
    return inventory, play


def _run(tmp_path, sim):
    src = tmp_path / "data"
    src.mkdir(exist_ok=True)
    inventory, play = _play(sim, str(src))
    (tmp_path / "play.yml").write_text(json.dumps(play))
    (tmp_path / "vars.json").write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_ROLES_PATH=os.path.join(REPO_ROOT, "roles"), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", "@" + str(tmp_path / "vars.json"), str(tmp_path / "play.yml")],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO_ROOT, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    doc = json.loads(proc.stdout[proc.stdout.index("{"):])
    tasks = {}
    for play_doc in doc["plays"]:
        for task in play_doc["tasks"]:
            # Tasks of an included role are named "<role> : <name>".
            tasks[task["task"]["name"].split(" : ")[-1]] = task["hosts"]["localhost"]
    return tasks


def test_vault_role_writes_the_policies_and_roles_the_backup_jobs_use(tmp_path, vault_sim):
    tasks = _run(tmp_path, vault_sim)
    report = json.loads(tasks["Report"]["msg"])
    plan = report["plan"]
    assert [j["name"] for j in plan] == ["backup-apps", "backup-apps-retention", "backup-etc",
                                         "backup-etc-retention", "restore-drill"]
    # Vault holds the very policies the jobs' plan carries, and the JWT roles bound to each job.
    assert report["policies"] == [j["policy"] for j in plan]
    for job, role in zip(plan, report["roles"], strict=True):
        assert role["bound_claims"] == {"nomad_job_id": job["name"]}
        assert role["token_policies"] == [job["name"]]
    policies = dict((j["name"], p) for j, p in zip(plan, report["policies"], strict=True))
    assert 'path "kv/data/backup-apps"' in policies["backup-apps-retention"]
    assert 'path "kv/data/backup-etc"' not in policies["backup-apps-retention"]
    # The drill reads only the sets it drills (etc has drill: false).
    assert 'path "kv/data/backup-apps"' in policies["restore-drill"]
    assert 'path "kv/data/backup-etc"' not in policies["restore-drill"]
    # The sets' secrets were written where the jobs' templates read them.
    resp = requests.get("%s/v1/kv/data/backup-apps" % vault_sim.address, timeout=10,
                        headers={"X-Vault-Token": vault_sim.app.dev_root_token})
    assert resp.json()["data"]["data"] == {"restic_password": "pw-apps"}
    # One vault_kv run wrote both sets' secrets; jobs with no secret and no Consul token get no path.
    kv_task = "Write the jobs' secrets and Consul tokens that differ"
    assert tasks[kv_task]["changed"] is True, tasks[kv_task]
    resp = requests.get("%s/v1/kv/metadata/backup-apps-retention" % vault_sim.address, timeout=10,
                        headers={"X-Vault-Token": vault_sim.app.dev_root_token})
    assert resp.status_code == 404
    # A second run finds every policy and role as wanted and writes none.
    vault_sim.reset_log()
    again = _run(tmp_path, vault_sim)
    # ... and the secrets too: one read per secret, no write, no new version.
    assert again[kv_task]["changed"] is False, again[kv_task]
    assert vault_sim.count("GET", "/v1/kv/data/") == 2 and vault_sim.count("POST", "/v1/kv/") == 0
    acl = again["Write the job policies and JWT roles that differ"]
    assert acl["changed"] is False, acl
    assert len(acl["policies"]) == 5 and not any(p["changed"] for p in acl["policies"]), acl
    assert len(acl["jwt_roles"]) == 5 and not any(r["changed"] for r in acl["jwt_roles"]), acl
    # One read per policy and per role, and no write.
    assert acl["requests"] == 10, acl
    # A role changed behind the role's back (here its token_period) is put back: every field is compared.
    role_url = "%s/v1/auth/jwt-nomad/role/backup-etc" % vault_sim.address
    headers = {"X-Vault-Token": vault_sim.app.dev_root_token}
    assert requests.post(role_url, json={"token_period": "5m"}, headers=headers, timeout=10).status_code == 204
    acl = _run(tmp_path, vault_sim)["Write the job policies and JWT roles that differ"]
    assert acl["changed"] is True and acl["requests"] == 11, acl
    assert [r["name"] for r in acl["jwt_roles"] if r["changed"]] == ["backup-etc"], acl
    assert acl["jwt_roles"][2]["differences"] == ["token_period"], acl
    assert requests.get(role_url, headers=headers, timeout=10).json()["data"]["token_period"] == 1800
