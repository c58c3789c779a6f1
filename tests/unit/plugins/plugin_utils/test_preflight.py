"""The inventory preflight (plugins/plugin_utils/_preflight.py): good inventories pass, each bad one
names the host and the variable, every problem of an inventory is reported at once."""

import copy
import os

import pytest
import yaml
from ansible_collections.selfhost.homelab.plugins.plugin_utils._preflight import (
    APPS,
    PLACEHOLDER,
    ROLE_DEFAULTS,
    VARIABLES,
    check_inventory,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

SECRETS = {
    "photoprism": {"admin_password": "a", "db_password": "b", "db_root_password": "c"},
    "nextcloud": {"admin_password": "d", "db_password": "e"},
    "plex": {"claim_token": "claim-x"},
    "transmission": {"rpc_password": "f"},
    "traefik": {"do_auth_token": "g", "dashboard_users": "owner:$apr1$x$y"},
    "grafana": {"admin_password": "h"},
    "backup-apps": {"restic_password": "i", "b2_b2_account_id": "j", "b2_b2_account_key": "k"},
}
GROUPS_SINGLE = {name: ["box"] for name in
                 ("homelab", "consul_servers", "vault_servers", "nomad_servers", "nomad_clients", "ingress")}


def single_box():
    """The single box of inventories/example-single, as the action plugin hands it over."""
    return copy.deepcopy(GROUPS_SINGLE), {"box": {
        "homelab_domain": "example.com",
        "homelab_ingress_addresses": ["192.168.1.10"],
        "homelab_lan_cidrs": ["192.168.1.0/24"],
        "homelab_zfs_pool": "tank",
        "homelab_data_root": "/srv/homelab",
        "homelab_scratch_root": "/srv/scratch",
        "homelab_bootstrap_file": "/home/owner/homelab/bootstrap.vault.yml",
        "homelab_bootstrap_password": "secret",
        "zfs_pools": [
            {"name": "tank", "vdevs": [{"type": "mirror",
                                        "disks": ["/dev/disk/by-id/ata-A", "/dev/disk/by-id/ata-B"]}]},
            {"name": "scratch", "vdevs": [{"disks": ["/dev/disk/by-id/ata-C"]}]},
        ],
        "backup_repositories": [{"name": "b2", "url": "b2:homelab-backups:box"}],
        "homelab_secrets": copy.deepcopy(SECRETS),
    }}


def host_only():
    """The bundled demo: one host, host layer only."""
    return {"homelab": ["demo"], "ingress": ["demo"]}, {"demo": {
        "homelab_domain": "home.example.test", "homelab_ingress_addresses": ["192.168.1.3"],
        "homelab_lan_cidrs": ["192.168.1.0/24", "172.16.0.0/12"]}}


def problems_of(groups, hosts):
    return check_inventory(groups, hosts)[0]


def test_single_box_passes():
    assert check_inventory(*single_box()) == ([], [])


def test_host_only_demo_passes_without_secrets():
    assert check_inventory(*host_only()) == ([], [])


def test_cluster_passes():
    groups = {"homelab": ["s1", "s2", "s3", "c1"], "consul_servers": ["s1", "s2", "s3"],
              "vault_servers": ["s1", "s2", "s3"], "nomad_servers": ["s1", "s2", "s3"],
              "nomad_clients": ["c1", "s1"], "ingress": ["c1"]}
    box = single_box()[1]["box"]
    hosts = {h: copy.deepcopy(box) for h in groups["homelab"]}
    for h in hosts:
        hosts[h].pop("zfs_pools")
        hosts[h].pop("homelab_zfs_pool")
    assert check_inventory(groups, hosts) == ([], [])


@pytest.mark.parametrize(("change", "expected"), [
    ({"homelab_domain": None}, "box: homelab_domain: not set"),
    ({"homelab_domain": ""}, "box: homelab_domain: not set"),
    ({"homelab_domain": "exa mple.com"}, "box: homelab_domain: domain 'exa mple.com' is not a valid DNS name"),
    ({"homelab_domain": "localhost"}, "box: homelab_domain: domain 'localhost' needs at least two labels"),
    ({"homelab_ingress_addresses": ["192.168.1.300"]},
     "box: homelab_ingress_addresses[0]: '192.168.1.300' is not an IP"),
    ({"homelab_ingress_addresses": "192.168.1.10"}, "box: homelab_ingress_addresses: must be a list"),
    ({"homelab_ingress_addresses": []}, "box: homelab_ingress_addresses: empty on an ingress host"),
    ({"homelab_lan_cidrs": ["192.168.1.0/33"]}, "box: homelab_lan_cidrs[0]: '192.168.1.0/33' is not a network"),
    ({"homelab_data_root": "srv/homelab"}, "box: homelab_data_root: 'srv/homelab' is not an absolute path"),
    ({"homelab_zfs_pool": "data"}, "box: homelab_zfs_pool: 'data' is set but no entry of zfs_pools"),
    ({"zfs_pools": [{"name": "tank"}]}, "box: zfs_pools[0].vdevs: pool 'tank' names no disks"),
    ({"zfs_pools": [{"name": "tank", "vdevs": [{"type": "mirror", "disks": ["/dev/disk/by-id/ata-A"]}]}]},
     "box: zfs_pools[0].vdevs[0].disks: a mirror needs at least 2 disks, got 1"),
    ({"zfs_pools": [{"name": "tank", "vdevs": [{"type": "raidz2", "disks": ["/dev/disk/by-id/ata-A"] * 2}]}]},
     "box: zfs_pools[0].vdevs[0].disks: a raidz2 needs at least 3 disks, got 2"),
    ({"zfs_pools": [{"name": "tank", "vdevs": [{"type": "disk", "disks": ["/dev/disk/by-id/ata-A"]}]}]},
     "box: zfs_pools[0].vdevs[0].type: 'disk' is not a vdev type (stripe, mirror,"),
    ({"zfs_pools": [{"name": "tank", "vdevs": [{"type": "mirror", "disks": []}]}]},
     "box: zfs_pools[0].vdevs[0].disks: no disks named"),
    ({"zfs_pools": [{"name": "tank", "vdevs": [{"type": "mirror", "disks": ["ata-A", "/dev/disk/by-id/ata-B"]}]}]},
     "box: zfs_pools[0].vdevs[0].disks[0]: 'ata-A' is not a device path under /dev"),
    ({"zfs_pools": [{"name": "tank", "vdevs": [{"type": "mirror", "disks": ["/dev/disk/by-id/ata-A"] * 2}]}]},
     "box: zfs_pools[0].vdevs[0].disks[1]: /dev/disk/by-id/ata-A is already used at zfs_pools[0].vdevs[0].disks[0]"),
    ({"plex_subdomain": "photos"},
     "box: plex_subdomain: 'photos' is already the subdomain of PhotoPrism (photoprism_subdomain)"),
    ({"transmission_subdomain": "grafana"},
     "box: transmission_subdomain: 'grafana' is the Consul service name of Grafana (monitoring)"),
    ({"nextcloud_subdomain": "cloud_1"}, "box: nextcloud_subdomain: subdomain 'cloud_1' is not a valid DNS name"),
    ({"photoprism_subdomain": "traefik"},
     "box: traefik_dashboard_subdomain: 'traefik' is already the subdomain of PhotoPrism (photoprism_subdomain)"),
    ({"backup_repositories": []}, "box: backup_repositories: empty"),
    ({"backup_repositories": [{"name": "ftp", "url": "ftp://nas/backup"}]},
     "box: backup_repositories: backup_repositories[0].url 'ftp://nas/backup' has an unknown scheme"),
    ({"backup_sets": [{"name": "etc", "paths": ["/etc"], "repositories": ["usb"]}]},
     "box: backup_sets[0].repositories: 'usb' is not in backup_repositories"),
    ({"homelab_bootstrap_password": ""}, "box: homelab_bootstrap_password: not set"),
    ({"homelab_bootstrap_password": "CHANGE_ME"}, "box: homelab_bootstrap_password: still the placeholder"),
    ({"homelab_secrets": ["photoprism"]}, "box: homelab_secrets: must be a mapping"),
])
def test_bad_value_names_host_and_variable(change, expected):
    groups, hosts = single_box()
    hosts["box"].update(change)
    hosts["box"] = {k: v for k, v in hosts["box"].items() if v is not None}
    problems = problems_of(groups, hosts)
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(("job", "field", "expected"), [
    ("photoprism", "db_root_password", "the database job photoprism-db"),
    ("nextcloud", "admin_password", "Nextcloud's admin login"),
    ("plex", "claim_token", "Plex's first start (https://plex.tv/claim)"),
    ("transmission", "rpc_password", "Transmission's web UI and RPC"),
    ("traefik", "do_auth_token", "Traefik's DNS-01 challenge (DO_AUTH_TOKEN)"),
    ("traefik", "dashboard_users", "Traefik's dashboard users (htpasswd lines)"),
    ("grafana", "admin_password", "Grafana's admin login"),
    ("backup-apps", "restic_password", "restic's password of repository b2"),
    ("backup-apps", "b2_b2_account_key", "the credentials of repository b2"),
])
def test_missing_secret_names_job_field_and_reader(job, field, expected):
    groups, hosts = single_box()
    del hosts["box"]["homelab_secrets"][job][field]
    assert problems_of(groups, hosts) == [
        "box: homelab_secrets['%s'].%s: missing (%s reads it)" % (job, field, expected)]


def test_empty_and_placeholder_secrets():
    groups, hosts = single_box()
    hosts["box"]["homelab_secrets"]["plex"]["claim_token"] = "  "
    hosts["box"]["homelab_secrets"]["grafana"]["admin_password"] = PLACEHOLDER
    assert problems_of(groups, hosts) == [
        "box: homelab_secrets['grafana'].admin_password: still the placeholder CHANGE_ME from the example vault file",
        "box: homelab_secrets['plex'].claim_token: missing (Plex's first start (https://plex.tv/claim) reads it)",
    ]


def test_disabled_app_needs_no_secret_and_frees_its_subdomain():
    groups, hosts = single_box()
    del hosts["box"]["homelab_secrets"]["plex"]
    hosts["box"]["plex_enabled"] = False
    hosts["box"]["transmission_subdomain"] = "plex"
    assert problems_of(groups, hosts) == []
    hosts["box"]["plex_enabled"] = "true"  # as a string from an ini inventory or -e
    assert len(problems_of(groups, hosts)) == 2


def test_secrets_follow_the_options_that_need_them():
    groups, hosts = single_box()
    box = hosts["box"]
    box["traefik_acme_dns_provider_env"] = {"CF_DNS_API_TOKEN": "cf_token"}
    box["traefik_dashboard_enabled"] = False
    box["monitoring_alertmanager_smtp_auth_username"] = "alerts@example.com"
    box["backup_repositories"].append({"name": "s3-nas", "url": "s3:https://nas:9000/backup"})
    assert problems_of(groups, hosts) == [
        "box: homelab_secrets['alertmanager'].smtp_password: missing (Alertmanager's mail relay login reads it)",
        "box: homelab_secrets['backup-apps'].s3_nas_aws_access_key_id: missing (the credentials of repository "
        "s3-nas reads it)",
        "box: homelab_secrets['backup-apps'].s3_nas_aws_secret_access_key: missing (the credentials of repository "
        "s3-nas reads it)",
        "box: homelab_secrets['traefik'].cf_token: missing (Traefik's DNS-01 challenge (CF_DNS_API_TOKEN) reads it)",
    ]
    box["traefik_acme_enabled"] = False
    box["backup_sets"] = [{"name": "apps", "paths": ["/srv"], "repositories": ["b2"]}]
    assert problems_of(groups, hosts) == [
        "box: homelab_secrets['alertmanager'].smtp_password: missing (Alertmanager's mail relay login reads it)"]


def test_secrets_are_read_from_the_first_vault_server():
    groups, hosts = single_box()
    groups["homelab"].append("vault1")
    groups["vault_servers"] = ["vault1"]
    hosts["vault1"] = copy.deepcopy(hosts["box"])
    hosts["vault1"]["homelab_secrets"] = {}
    problems = problems_of(groups, hosts)
    assert ("vault1: homelab_secrets['plex'].claim_token: missing (Plex's first start (https://plex.tv/claim) "
            "reads it)") in problems
    assert not [p for p in problems if p.startswith("box: homelab_secrets")]


def test_group_sizes():
    groups, hosts = single_box()
    groups["homelab"] += ["b2"]
    hosts["b2"] = copy.deepcopy(hosts["box"])
    groups["consul_servers"] = ["box", "b2"]
    groups["nomad_servers"] = ["box", "b2", "x"]
    problems = problems_of(groups, hosts)
    assert problems == [
        "groups: nomad_servers: host x is not in group homelab (the host layer would not run there)",
        "groups: consul_servers: 2 hosts (box, b2): servers keep a quorum only in odd numbers (1, 3 or 5); "
        "with 2, losing 1 stops the cluster, as with 1",
    ]


def test_stack_groups_come_together():
    groups, hosts = single_box()
    groups["consul_servers"] = []
    groups["nomad_clients"] = []
    groups["ingress"] = []
    assert problems_of(groups, hosts) == [
        "groups: consul_servers: empty, but nomad_servers is set: the HashiCorp layer needs consul_servers, "
        "vault_servers and nomad_servers together",
        "groups: nomad_clients: empty: Nomad has nowhere to run Traefik, monitoring, backups and the apps "
        "(the single box is in nomad_clients too)",
        "groups: ingress: empty: Traefik and the apps need at least one ingress host",
    ]


def test_ingress_host_must_be_a_nomad_client():
    groups, hosts = single_box()
    groups["homelab"].append("edge")
    groups["ingress"] = ["edge"]
    hosts["edge"] = {k: v for k, v in hosts["box"].items() if k.startswith("homelab_") and k != "homelab_zfs_pool"}
    assert problems_of(groups, hosts) == [
        "groups: ingress: host edge is not in nomad_clients: Traefik runs as a Nomad job on the ingress hosts"]


def test_empty_inventory():
    assert problems_of({"all": [], "ungrouped": []}, {}) == [
        "groups: homelab: no hosts: every host of the home server belongs in group homelab"]


def test_hosts_must_agree_on_the_domain():
    groups, hosts = host_only()
    groups["homelab"].append("nas")
    hosts["nas"] = dict(hosts["demo"], homelab_domain="home.example.org")
    assert problems_of(groups, hosts) == [
        "groups: homelab_domain: the hosts disagree: home.example.org on nas; home.example.test on demo; "
        "set it once, in group_vars/all"]


def test_every_problem_at_once():
    groups, hosts = single_box()
    box = hosts["box"]
    del box["homelab_domain"]
    box["plex_subdomain"] = "photos"
    box["homelab_secrets"] = {}
    box["zfs_pools"] = []
    groups["vault_servers"] = ["box", "x"]
    problems = problems_of(groups, hosts)
    assert len(problems) == 5 + 13, problems  # 13 secret fields of the enabled jobs
    assert problems[:5] == [
        "groups: vault_servers: host x is not in group homelab (the host layer would not run there)",
        "groups: vault_servers: 2 hosts (box, x): servers keep a quorum only in odd numbers (1, 3 or 5); "
        "with 2, losing 1 stops the cluster, as with 1",
        "box: homelab_domain: not set: every service is <subdomain>.<homelab_domain>",
        "box: homelab_zfs_pool: 'tank' is set but no entry of zfs_pools (or zfs_pools_group, zfs_pools_host) "
        "names that pool and its disks",
        "box: plex_subdomain: 'photos' is already the subdomain of PhotoPrism (photoprism_subdomain); every enabled "
        "app needs its own",
    ]


def test_warnings_do_not_fail():
    groups, hosts = single_box()
    hosts["box"]["zfs_pools"][1]["vdevs"][0]["disks"] = ["/dev/sdc"]
    problems, warnings = check_inventory(groups, hosts)
    assert problems == []
    assert warnings == ["box: zfs_pools[1].vdevs[0].disks[0]: /dev/sdc is a kernel name that can change between "
                        "boots; name the disk by /dev/disk/by-id/..."]


def test_pool_layers_are_combined():
    groups, hosts = single_box()
    hosts["box"]["zfs_pools_host"] = hosts["box"].pop("zfs_pools")
    assert problems_of(groups, hosts) == []
    hosts["box"]["zfs_pools_group"] = [{"name": "tank2", "vdevs": [{"disks": ["/dev/disk/by-id/ata-A"]}]}]
    assert problems_of(groups, hosts) == [
        "box: zfs_pools_host[0].vdevs[0].disks[0]: /dev/disk/by-id/ata-A is already used at "
        "zfs_pools_group[0].vdevs[0].disks[0]"]


def test_imported_pool_needs_no_disks():
    groups, hosts = single_box()
    hosts["box"]["zfs_pools"][0] = {"name": "tank", "state": "imported"}
    assert problems_of(groups, hosts) == []


# The tables above must say what the roles say.

def _role_file(role, name):
    with open(os.path.join(REPO, "roles", role, name, "main.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize("variable", sorted(ROLE_DEFAULTS))
def test_role_defaults_match_the_roles(variable):
    role = next(r for r in ("photoprism", "nextcloud", "plex", "transmission", "traefik", "monitoring", "backup", "zfs")
                if variable.startswith(r + "_"))
    assert _role_file(role, "defaults")[variable] == ROLE_DEFAULTS[variable]
    assert variable in VARIABLES


@pytest.mark.parametrize("app", sorted(APPS))
def test_app_secrets_match_the_roles_jobs(app):
    read = {}
    for value in _role_file(app, "vars").values():
        if isinstance(value, dict) and "name" in value and "image" in value:
            read.setdefault(value["name"], set()).update(value.get("secrets") or {})
            for job, fields in (value.get("secrets_from") or {}).items():
                read.setdefault(job, set()).update(fields)
    read = {job: fields for job, fields in read.items() if fields}
    assert read == {job: set(fields) for job, fields in APPS[app]["secrets"].items()}


def test_unread_secret_and_ingress_outside_the_lan_are_warnings():
    groups, hosts = single_box()
    hosts["box"]["homelab_secrets"]["photoprim"] = {"admin_password": "x"}
    hosts["box"]["homelab_ingress_addresses"] = ["10.0.0.5"]
    problems, warnings = check_inventory(groups, hosts)
    assert problems == []
    assert warnings == [
        "box: homelab_ingress_addresses[0]: 10.0.0.5 is in none of homelab_lan_cidrs: the firewall lets only those "
        "networks reach DNS and Traefik",
        "box: homelab_secrets['photoprim']: no job of the collection's roles reads it (known: backup-apps, grafana, "
        "nextcloud, photoprism, plex, traefik, transmission)",
    ]
