"""site.yml, its layer playbooks and the preflight, through ansible-playbook on the controller.

No host is touched: the preflight never connects (the inventories here point at
addresses nobody answers, or at a container that does not exist), and the other
runs are --syntax-check, --list-tasks and --list-tags.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
EXAMPLE = os.path.join(REPO, "inventories", "example-single")
ANSIBLE_BIN = os.path.dirname(sys.executable)
PLACEHOLDER = "CHANGE_ME"


def ansible(tool, *args, cwd=REPO, json_out=False):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    if json_out:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    proc = subprocess.run([os.path.join(ANSIBLE_BIN, tool), *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False, cwd=cwd)
    return proc


def preflight(inventory, *extra, cwd=REPO, playbook=None):
    """Run the preflight playbook; answer (rc, the preflight task's result, stats)."""
    proc = ansible("ansible-playbook", playbook or os.path.join(REPO, "playbooks", "preflight.yml"),
                   "-i", str(inventory), *extra, cwd=cwd, json_out=True)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("no JSON from ansible-playbook: rc=%s\n%s\n%s" % (proc.returncode, proc.stdout,
                                                                               proc.stderr)) from None
    task = out["plays"][0]["tasks"][0]
    assert task["task"]["name"] == "Check the inventory before any host is touched"
    result = next(iter(task["hosts"].values()))
    return proc.returncode, result, out["stats"]


@pytest.fixture
def example(tmp_path):
    """inventories/example-single as an owner sets it up: vault.yml from the example, filled in, encrypted."""
    inv = tmp_path / "example-single"
    shutil.copytree(EXAMPLE, inv)
    vault_dir = inv / "group_vars" / "all"
    text = (vault_dir / "vault.yml.example").read_text()
    filled = re.sub(PLACEHOLDER, lambda _match: secrets.token_urlsafe(12), text)
    (vault_dir / "vault.yml").write_text(filled)
    password = tmp_path / "vault-pass"
    password.write_text("test-only-vault-password\n")
    proc = ansible("ansible-vault", "encrypt", "--vault-password-file", str(password), str(vault_dir / "vault.yml"))
    assert proc.returncode == 0, proc.stderr
    assert (vault_dir / "vault.yml").read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    return inv, password


def test_example_vault_layout_covers_what_the_preflight_reads():
    with open(os.path.join(EXAMPLE, "group_vars", "all", "vault.yml.example"), encoding="utf-8") as f:
        layout = yaml.safe_load(f)
    assert set(layout) == {"homelab_bootstrap_password", "homelab_secrets"}
    values = [v for job in layout["homelab_secrets"].values() for v in job.values()]
    assert values and all(v == PLACEHOLDER for v in values)


def test_example_as_shipped_names_every_missing_secret():
    rc, result, stats = preflight(os.path.join(EXAMPLE, "hosts.yml"))
    assert rc == 2
    assert result["failed"] is True
    with open(os.path.join(EXAMPLE, "group_vars", "all", "vault.yml.example"), encoding="utf-8") as f:
        layout = yaml.safe_load(f)
    expected = sorted("box: homelab_secrets['%s'].%s: missing" % (job, field)
                      for job, fields in layout["homelab_secrets"].items() for field in fields)
    got = sorted(p.split(" (", 1)[0] for p in result["problems"] if "homelab_secrets" in p)
    assert got == expected
    assert [p for p in result["problems"] if "homelab_secrets" not in p] == [
        "box: homelab_bootstrap_password: not set: the HashiCorp layer keeps its unseal keys and tokens in "
        "homelab_bootstrap_file, encrypted with homelab_bootstrap_password"]
    assert "The inventory has %d problems" % len(result["problems"]) in result["msg"]
    assert stats["box"]["unreachable"] == 0


def test_example_with_placeholders_left_is_refused(tmp_path):
    inv = tmp_path / "example-single"
    shutil.copytree(EXAMPLE, inv)
    shutil.copy(inv / "group_vars" / "all" / "vault.yml.example", inv / "group_vars" / "all" / "vault.yml")
    rc, result, _stats = preflight(inv / "hosts.yml")
    assert rc == 2
    with open(os.path.join(EXAMPLE, "group_vars", "all", "vault.yml.example"), encoding="utf-8") as f:
        layout = yaml.safe_load(f)
    fields = sum(len(job) for job in layout["homelab_secrets"].values())
    assert len(result["problems"]) == fields + 1  # and homelab_bootstrap_password
    assert all("still the placeholder CHANGE_ME" in p for p in result["problems"])


def test_example_passes_the_preflight(example):
    inv, password = example
    rc, result, stats = preflight(inv / "hosts.yml", "--vault-password-file", str(password))
    assert rc == 0, result
    assert result["problems"] == []
    assert result["checked_hosts"] == ["box"]
    assert "warnings" not in result
    assert stats["box"]["unreachable"] == 0


def test_example_site_syntax_and_tasks(example):
    inv, password = example
    site = os.path.join(REPO, "playbooks", "site.yml")
    proc = ansible("ansible-playbook", site, "-i", str(inv / "hosts.yml"), "--vault-password-file", str(password),
                   "--syntax-check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = ansible("ansible-playbook", site, "-i", str(inv / "hosts.yml"), "--vault-password-file", str(password),
                   "--list-tasks")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plays = re.findall(r"^  play #\d+ \(([^)]*)\): (.+?)\tTAGS", proc.stdout, re.M)
    assert plays == [
        ("all", "Preflight - check the inventory as a whole"),
        ("homelab", "Host layer"),
        ("homelab", "HashiCorp layer - Consul"),
        ("vault_servers", "HashiCorp layer - Vault"),
        ("nomad_servers:nomad_clients", "HashiCorp layer - Nomad"),
        ("nomad_clients[0]", "Platform jobs layer"),
        ("nomad_clients[0]", "Apps layer"),
        ("nomad_clients[0]", "Platform jobs layer - backups (after the apps, whose data they back up)"),
    ]
    for role in ("base", "docker", "zfs", "dnscrypt_proxy", "host_metrics", "consul", "vault", "nomad", "traefik",
                 "monitoring", "backup", "transmission", "nextcloud", "photoprism", "plex"):
        assert re.search(r"^      selfhost\.homelab\.%s : " % role, proc.stdout, re.M), role


def test_tags_per_layer_and_role():
    proc = ansible("ansible-playbook", os.path.join(REPO, "playbooks", "site.yml"), "-i",
                   os.path.join(REPO, "inventories", "demo", "hosts.yml"), "--list-tags")
    assert proc.returncode == 0, proc.stderr
    tags = set()
    for line in re.findall(r"TASK TAGS: \[([^]]*)\]", proc.stdout):
        tags.update(t.strip() for t in line.split(","))
    assert {"preflight", "host", "hashistack", "platform", "apps"} <= tags
    assert {"base", "docker", "zfs", "dnscrypt_proxy", "host_metrics", "consul", "vault", "nomad", "traefik",
            "monitoring", "backup", "transmission", "nextcloud", "photoprism", "plex"} <= tags


def test_a_layer_tag_still_runs_the_preflight_first():
    proc = ansible("ansible-playbook", os.path.join(REPO, "playbooks", "site.yml"), "-i",
                   os.path.join(EXAMPLE, "hosts.yml"), "--list-tasks", "--tags", "apps")
    assert proc.returncode == 0, proc.stderr
    tasks = re.findall(r"^      (\S.*?)\tTAGS: \[([^]]*)\]", proc.stdout, re.M)
    assert tasks[0][0] == "Check the inventory before any host is touched"
    # other layers' roles contribute only their tasks tagged always (argument checks)
    others = [(name, tags) for name, tags in tasks
              if name.startswith(("selfhost.homelab.base ", "selfhost.homelab.consul "))]
    assert others and all("always" in tags.split(", ") for _name, tags in others), others
    assert [name for name, _tags in tasks if name.startswith("selfhost.homelab.photoprism ")]


def test_demo_passes_the_preflight_with_its_generated_secrets(tmp_path):
    """The whole-stack demo with the ansible-vault file scripts/demo.sh makes (scripts/demo-secrets.sh)."""
    subprocess.run([os.path.join(REPO, "scripts", "demo-secrets.sh"), str(tmp_path)], check=True, timeout=120,
                   capture_output=True)
    assert (tmp_path / "secrets.vault.yml").read_text().startswith("$ANSIBLE_VAULT;")
    assert oct((tmp_path / "vault-password").stat().st_mode & 0o777) == "0o600"
    rc, result, stats = preflight(os.path.join(REPO, "inventories", "demo", "hosts.yml"),
                                  "-e", "@%s" % (tmp_path / "secrets.vault.yml"),
                                  "--vault-password-file", str(tmp_path / "vault-password"))
    assert rc == 0, result
    assert result["checked_hosts"] == ["demo"]
    assert stats["demo"]["unreachable"] == 0


def test_demo_without_its_secrets_fails_the_preflight_naming_each():
    rc, result, stats = preflight(os.path.join(REPO, "inventories", "demo", "hosts.yml"))
    assert rc != 0
    text = "\n".join(result["problems"])
    for job in ("traefik", "grafana", "backup-apps", "photoprism", "nextcloud", "plex", "transmission"):
        assert "homelab_secrets['%s']" % job in text, text
    assert stats["demo"]["unreachable"] == 0


BAD = {
    "homelab": {"hosts": {
        "a": {"ansible_host": "192.0.2.1", "homelab_domain": "home.example.org"},
        "b": {"ansible_host": "192.0.2.2", "homelab_domain": "home_lab.example.org"},
        "c": {"ansible_host": "192.0.2.3"},
    }},
    "consul_servers": {"hosts": {"a": None, "b": None}},
    "vault_servers": {"hosts": {"a": None}},
    "nomad_servers": {"hosts": {"a": None}},
    "nomad_clients": {"hosts": {"c": None}},
    "ingress": {"hosts": {"a": None}},
    "all": {"vars": {
        "homelab_ingress_addresses": ["192.0.2.300"],
        "homelab_zfs_pool": "tank",
        "zfs_pools": [{"name": "tank", "vdevs": [{"type": "mirror", "disks": ["/dev/sda"]}]}],
        "plex_subdomain": "photos",
        "homelab_bootstrap_file": "/nonexistent/bootstrap.yml",
        "homelab_bootstrap_password": "x",
        "homelab_secrets": {"plex": {"claim_token": "claim-1"}},
    }},
}


def test_bad_inventory_reports_every_problem_at_once_without_touching_a_host(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump(BAD))
    rc, result, stats = preflight(inv)
    assert rc == 2
    problems = result["problems"]
    for expected in [
        "groups: consul_servers: 2 hosts (a, b): servers keep a quorum only in odd numbers",
        "groups: ingress: host a is not in nomad_clients",
        "b: homelab_domain: domain 'home_lab.example.org' is not a valid DNS name",
        "c: homelab_domain: not set",
        "a: homelab_ingress_addresses[0]: '192.0.2.300' is not an IP address",
        "a: zfs_pools[0].vdevs[0].disks: a mirror needs at least 2 disks, got 1",
        "a: plex_subdomain: 'photos' is already the subdomain of PhotoPrism (photoprism_subdomain)",
        "a: backup_repositories: empty",
        "a: homelab_secrets['photoprism'].db_root_password: missing",
        "a: homelab_secrets['grafana'].admin_password: missing",
    ]:
        assert [p for p in problems if p.startswith(expected)], (expected, problems)
    assert not [p for p in problems if "claim_token" in p]
    assert "box" not in json.dumps(problems)
    # the kernel disk name is a warning, shown beside the problems
    assert any("/dev/sda is a kernel name" in w for w in result.get("warnings", []))
    # one task, run once, and no host was contacted
    assert sum(s["failures"] for s in stats.values()) == 1
    assert all(s["unreachable"] == 0 for s in stats.values())


def test_fail_on_warnings(tmp_path):
    inventory = {"homelab": {"hosts": {"a": {"homelab_domain": "home.example.org",
                                             "zfs_pools": [{"name": "p", "vdevs": [{"disks": ["/dev/sdb"]}]}]}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    play = [{"name": "Preflight", "hosts": "all", "gather_facts": False,
             "tasks": [{"name": "Check the inventory before any host is touched",
                        "selfhost.homelab.preflight": {"fail_on_warnings": True}, "run_once": True}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    rc, result, _stats = preflight(tmp_path / "hosts.yml", playbook=str(tmp_path / "play.yml"))
    assert rc == 2
    assert result["problems"] == ["a: zfs_pools[0].vdevs[0].disks[0]: /dev/sdb is a kernel name that can change "
                                  "between boots; name the disk by /dev/disk/by-id/..."]


def test_unevaluable_variable_is_named(tmp_path):
    inventory = {"homelab": {"hosts": {"a": {"homelab_domain": "{{ no_such_variable }}.example.org"}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    rc, result, _stats = preflight(tmp_path / "hosts.yml")
    assert rc == 2
    assert result["problems"][0].startswith("a: homelab_domain: cannot be evaluated:"), result["problems"]
    assert "no_such_variable" in result["problems"][0]


def test_collection_playbooks_by_name(example, tmp_path):
    """selfhost.homelab.site and selfhost.homelab.preflight, run by name from outside the checkout."""
    inv, password = example
    rc, result, _stats = preflight(inv / "hosts.yml", "--vault-password-file", str(password), cwd=tmp_path,
                                   playbook="selfhost.homelab.preflight")
    assert rc == 0, result
    proc = ansible("ansible-playbook", "selfhost.homelab.site", "-i", str(inv / "hosts.yml"),
                   "--vault-password-file", str(password), "--syntax-check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for layer in ("host", "hashistack", "platform", "apps", "backups"):
        proc = ansible("ansible-playbook", "selfhost.homelab.%s" % layer, "-i", str(inv / "hosts.yml"),
                       "--vault-password-file", str(password), "--syntax-check", cwd=tmp_path)
        assert proc.returncode == 0, (layer, proc.stdout + proc.stderr)


def test_site_stops_after_a_failed_preflight(tmp_path):
    """site.yml on the bad inventory: the preflight fails and no later play starts (no host is contacted)."""
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump(BAD))
    proc = ansible("ansible-playbook", os.path.join(REPO, "playbooks", "site.yml"), "-i", str(inv), json_out=True)
    assert proc.returncode == 2, proc.stderr
    out = json.loads(proc.stdout)
    assert [p["play"]["name"] for p in out["plays"]] == ["Preflight - check the inventory as a whole"]
    assert all(s["unreachable"] == 0 and s["ok"] == 0 for s in out["stats"].values())
