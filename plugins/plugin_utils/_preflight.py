# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory as a whole, checked before site.yml touches any host.

``check_inventory(groups, hosts)`` takes the inventory groups and, per host,
the (templated) values of the variables in ``VARIABLES`` that the host has,
and returns ``(problems, warnings)``: every problem at once, each naming the
host (or the group) and the variable. It knows the collection's roles: their
defaults for the variables it reads are in ``ROLE_DEFAULTS`` (a unit test
compares them with the roles' ``defaults/main.yml``), the secret fields each
job reads are in ``APPS`` and ``_platform_secrets``.

Pure Python, no Ansible runtime: the ``selfhost.homelab.preflight`` action
plugin gathers the values and calls this.
"""

from __future__ import annotations

import ipaddress
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.homelab.plugins.filter.backup_plan import _repositories
from ansible_collections.selfhost.homelab.plugins.filter.fqdn import fqdn

# Inventory groups of docs/design.md.
SERVER_GROUPS = ("consul_servers", "vault_servers", "nomad_servers")
STACK_GROUPS = SERVER_GROUPS + ("nomad_clients", "ingress")

# The collection's apps: the role, the job(s), the secret fields their jobs read from
# homelab_secrets[<job>] (kv/data/<job>), and what reads each field.
APPS = {
    "photoprism": {
        "title": "PhotoPrism",
        "secrets": {
            "photoprism": {
                "admin_password": "PhotoPrism's admin login",
                "db_password": "PhotoPrism and its database (photoprism-db)",
                "db_root_password": "the database job photoprism-db",
            },
        },
    },
    "nextcloud": {
        "title": "Nextcloud",
        "secrets": {
            "nextcloud": {
                "admin_password": "Nextcloud's admin login",
                "db_password": "Nextcloud and its database (nextcloud-db)",
            },
        },
    },
    "plex": {
        "title": "Plex",
        "secrets": {"plex": {"claim_token": "Plex's first start (https://plex.tv/claim)"}},
    },
    "transmission": {
        "title": "Transmission",
        "secrets": {"transmission": {"rpc_password": "Transmission's web UI and RPC"}},
    },
}

# Consul service names that exist besides the apps' subdomains: the HashiCorp
# agents, the platform jobs, the apps' databases and the host services.
RESERVED_SERVICES = {
    "consul": "Consul",
    "vault": "Vault",
    "nomad": "Nomad's servers",
    "nomad-client": "Nomad's clients",
    "traefik": "Traefik",
    "prometheus": "Prometheus (monitoring)",
    "alertmanager": "Alertmanager (monitoring)",
    "grafana": "Grafana (monitoring)",
    "cadvisor": "cAdvisor (monitoring)",
    "photoprism-db": "PhotoPrism's database",
    "nextcloud-db": "Nextcloud's database",
    "dnscrypt-proxy": "dnscrypt-proxy",
    "node-exporter": "node-exporter",
}

# The roles' defaults of the variables read here (tests/unit: equal to defaults/main.yml).
ROLE_DEFAULTS = {
    "photoprism_enabled": True,
    "photoprism_subdomain": "photos",
    "nextcloud_enabled": True,
    "nextcloud_subdomain": "cloud",
    "plex_enabled": True,
    "plex_subdomain": "plex",
    "transmission_enabled": True,
    "transmission_subdomain": "torrents",
    "traefik_acme_enabled": True,
    "traefik_acme_dns_provider_env": {"DO_AUTH_TOKEN": "do_auth_token"},
    "traefik_dashboard_enabled": True,
    "traefik_dashboard_subdomain": "traefik",
    "traefik_dashboard_users_field": "dashboard_users",
    "monitoring_alertmanager_smtp_auth_username": "",
    "backup_repositories": [],
    "backup_repositories_group": [],
    "backup_repositories_host": [],
    "backup_sets": [],
    "backup_sets_group": [],
    "backup_sets_host": [],
    "zfs_pools": [],
    "zfs_pools_group": [],
    "zfs_pools_host": [],
}

# Shared variables (docs/design.md) and the role variables above: what the action plugin reads.
VARIABLES = (
    "homelab_domain",
    "homelab_ingress_addresses",
    "homelab_lan_cidrs",
    "homelab_zfs_pool",
    "homelab_data_root",
    "homelab_scratch_root",
    "homelab_secrets",
    "homelab_bootstrap_file",
    "homelab_bootstrap_password",
) + tuple(ROLE_DEFAULTS)

# Secret values still as shipped in the example vault file.
PLACEHOLDER = "CHANGE_ME"
# Kernel names of disks, which can change between boots.
_KERNEL_DISK = re.compile(r"^/dev/(sd[a-z]+|hd[a-z]+|vd[a-z]+|xvd[a-z]+|nvme[0-9]+n[0-9]+)$")
_MAX_SERVERS = 7
# selfhost.homelab.zpool's vdev types and the fewest disks each takes.
_VDEV_MIN_DISKS = {"stripe": 1, "mirror": 2, "raidz": 2, "raidz1": 2, "raidz2": 3, "raidz3": 4,
                   "draid": 2, "draid1": 2, "draid2": 3, "draid3": 4}


class Report:
    """Problems and warnings, in the order found, without repeats."""

    def __init__(self):
        self.problems = []
        self.warnings = []

    def problem(self, where, variable, text):
        line = "%s: %s: %s" % (where, variable, text)
        if line not in self.problems:
            self.problems.append(line)

    def warning(self, where, variable, text):
        line = "%s: %s: %s" % (where, variable, text)
        if line not in self.warnings:
            self.warnings.append(line)


def _get(values, name):
    """A host's value of a variable, else the role's default (None for shared variables)."""
    if name in values:
        return values[name]
    return ROLE_DEFAULTS.get(name)


def _bool(value):
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)


def _listing(hosts):
    return ", ".join(hosts) if hosts else "none"


def _check_groups(groups, rep):
    homelab = groups.get("homelab") or []
    if not homelab:
        rep.problem("groups", "homelab", "no hosts: every host of the home server belongs in group homelab")
    for group in STACK_GROUPS:
        for host in groups.get(group) or []:
            if host not in homelab:
                rep.problem("groups", group, "host %s is not in group homelab (the host layer would not run there)"
                            % host)
    for group in SERVER_GROUPS:
        members = groups.get(group) or []
        if members and len(members) % 2 == 0:
            size = len(members)
            rep.problem("groups", group,
                        "%d hosts (%s): servers keep a quorum only in odd numbers (1, 3 or 5); with %d, losing "
                        "%d stops the cluster, as with %d" % (size, _listing(members), size, size // 2, size - 1))
        elif len(members) > _MAX_SERVERS:
            rep.warning("groups", group, "%d servers: more than %d makes every write slower and buys nothing "
                        "at home; run the rest as clients" % (len(members), _MAX_SERVERS))
    consul, vault, nomad = (groups.get(g) or [] for g in SERVER_GROUPS)
    if nomad or vault:
        for group, members in (("consul_servers", consul), ("vault_servers", vault)):
            if not members:
                rep.problem("groups", group, "empty, but %s is set: the HashiCorp layer needs consul_servers, "
                            "vault_servers and nomad_servers together"
                            % ("nomad_servers" if nomad else "vault_servers"))
    if consul and not nomad:
        rep.warning("groups", "nomad_servers", "empty: the HashiCorp layer runs, but no platform job or app will")
    if nomad:
        clients = groups.get("nomad_clients") or []
        ingress = groups.get("ingress") or []
        if not clients:
            rep.problem("groups", "nomad_clients", "empty: Nomad has nowhere to run Traefik, monitoring, "
                        "backups and the apps (the single box is in nomad_clients too)")
        if not ingress:
            rep.problem("groups", "ingress", "empty: Traefik and the apps need at least one ingress host")
        for host in ingress:
            if clients and host not in clients:
                rep.problem("groups", "ingress", "host %s is not in nomad_clients: Traefik runs as a Nomad job "
                            "on the ingress hosts" % host)


def _check_domain(host, values, rep, seen):
    domain = values.get("homelab_domain")
    if domain in (None, ""):
        rep.problem(host, "homelab_domain", "not set: every service is <subdomain>.<homelab_domain>")
        return None
    try:
        name = fqdn("@", domain)
    except AnsibleFilterError as exc:
        rep.problem(host, "homelab_domain", str(exc).replace("fqdn: ", "", 1))
        return None
    seen.setdefault(name, []).append(host)
    return name


def _check_addresses(host, values, rep, ingress):
    addresses = values.get("homelab_ingress_addresses")
    if addresses is not None:
        if isinstance(addresses, str) or not isinstance(addresses, list):
            rep.problem(host, "homelab_ingress_addresses", "must be a list of IP addresses, got %r" % (addresses,))
            addresses = None
        else:
            for i, addr in enumerate(addresses):
                try:
                    ipaddress.ip_address(str(addr))
                except ValueError:
                    rep.problem(host, "homelab_ingress_addresses[%d]" % i, "%r is not an IP address" % (addr,))
    if host in ingress and not addresses:
        rep.problem(host, "homelab_ingress_addresses", "empty on an ingress host: dnscrypt-proxy cloaks "
                    "*.<homelab_domain> to these addresses and listens on them")
    cidrs = values.get("homelab_lan_cidrs")
    networks = []
    if cidrs is not None:
        if isinstance(cidrs, str) or not isinstance(cidrs, list):
            rep.problem(host, "homelab_lan_cidrs", "must be a list of networks such as 192.168.1.0/24, got %r"
                        % (cidrs,))
        else:
            for i, cidr in enumerate(cidrs):
                try:
                    networks.append(ipaddress.ip_network(str(cidr), strict=False))
                except ValueError:
                    rep.problem(host, "homelab_lan_cidrs[%d]" % i, "%r is not a network such as 192.168.1.0/24"
                                % (cidr,))
    if host in ingress and networks and isinstance(addresses, list):
        for i, addr in enumerate(addresses):
            try:
                ip = ipaddress.ip_address(str(addr))
            except ValueError:
                continue
            if not any(ip.version == net.version and ip in net for net in networks):
                rep.warning(host, "homelab_ingress_addresses[%d]" % i, "%s is in none of homelab_lan_cidrs: the "
                            "firewall lets only those networks reach DNS and Traefik" % ip)


def _check_paths(host, values, rep):
    for name in ("homelab_data_root", "homelab_scratch_root"):
        path = values.get(name)
        if path is not None and (not isinstance(path, str) or not path.startswith("/")):
            rep.problem(host, name, "%r is not an absolute path" % (path,))


def _pools(values):
    pools = []
    for name in ("zfs_pools", "zfs_pools_group", "zfs_pools_host"):
        given = _get(values, name) or []
        if not isinstance(given, list):
            continue
        for i, pool in enumerate(given):
            if isinstance(pool, dict):
                pools.append(("%s[%d]" % (name, i), pool))
    return pools


def _check_pools(host, values, rep):
    for name in ("zfs_pools", "zfs_pools_group", "zfs_pools_host"):
        given = _get(values, name)
        if given is not None and not isinstance(given, list):
            rep.problem(host, name, "must be a list of pools")
        for i, pool in enumerate(given if isinstance(given, list) else []):
            if not isinstance(pool, dict) or not pool.get("name"):
                rep.problem(host, "%s[%d]" % (name, i), "a pool needs at least a name")
    pools = _pools(values)
    disks_seen = {}
    for where, pool in pools:
        if (pool.get("state") or "present") != "present":
            continue
        vdevs = pool.get("vdevs")
        if not isinstance(vdevs, list) or not vdevs:
            rep.problem(host, where + ".vdevs", "pool %r names no disks (give vdevs: [{type: mirror, disks: "
                        "[/dev/disk/by-id/...]}], or state: imported for an existing pool)" % (pool.get("name"),))
            continue
        for j, vdev in enumerate(vdevs):
            vwhere = "%s.vdevs[%d]" % (where, j)
            disks = vdev.get("disks") if isinstance(vdev, dict) else None
            if not isinstance(disks, list) or not disks:
                rep.problem(host, vwhere + ".disks", "no disks named")
                continue
            vtype = vdev.get("type") or "stripe"
            if vtype not in _VDEV_MIN_DISKS:
                rep.problem(host, vwhere + ".type", "%r is not a vdev type (%s)" % (vtype, ", ".join(_VDEV_MIN_DISKS)))
            elif len(disks) < _VDEV_MIN_DISKS[vtype]:
                rep.problem(host, vwhere + ".disks", "a %s needs at least %d disks, got %d"
                            % (vtype, _VDEV_MIN_DISKS[vtype], len(disks)))
            for k, disk in enumerate(disks):
                dwhere = "%s.disks[%d]" % (vwhere, k)
                if not isinstance(disk, str) or not disk.startswith("/dev/"):
                    rep.problem(host, dwhere, "%r is not a device path under /dev" % (disk,))
                    continue
                if _KERNEL_DISK.match(disk):
                    rep.warning(host, dwhere, "%s is a kernel name that can change between boots; name the disk "
                                "by /dev/disk/by-id/..." % disk)
                if disk in disks_seen:
                    rep.problem(host, dwhere, "%s is already used at %s" % (disk, disks_seen[disk]))
                else:
                    disks_seen[disk] = dwhere
    pool = values.get("homelab_zfs_pool")
    if pool not in (None, ""):
        if not isinstance(pool, str):
            rep.problem(host, "homelab_zfs_pool", "must be a pool name, got %r" % (pool,))
        elif pool not in [p.get("name") for _where, p in pools]:
            rep.problem(host, "homelab_zfs_pool", "%r is set but no entry of zfs_pools (or zfs_pools_group, "
                        "zfs_pools_host) names that pool and its disks" % pool)


def _check_subdomains(host, values, domain, rep):
    used = {}
    names = []
    for app in APPS:
        if _bool(_get(values, app + "_enabled")):
            names.append((app + "_subdomain", _get(values, app + "_subdomain"), APPS[app]["title"]))
    if _bool(_get(values, "traefik_dashboard_enabled")):
        names.append(("traefik_dashboard_subdomain", _get(values, "traefik_dashboard_subdomain"),
                      "Traefik's dashboard"))
    for variable, sub, title in names:
        if not isinstance(sub, str) or not sub:
            rep.problem(host, variable, "must be a subdomain such as photos, got %r" % (sub,))
            continue
        if domain:
            try:
                fqdn(sub, domain)
            except AnsibleFilterError as exc:
                rep.problem(host, variable, str(exc).replace("fqdn: ", "", 1))
                continue
        sub = sub.lower()
        if sub in used:
            rep.problem(host, variable, "%r is already the subdomain of %s (%s); every enabled app needs its own"
                        % (sub, used[sub][1], used[sub][0]))
            continue
        used[sub] = (variable, title)
        owner = RESERVED_SERVICES.get(sub)
        if owner and not (variable == "traefik_dashboard_subdomain" and sub == "traefik"):
            rep.problem(host, variable, "%r is the Consul service name of %s; choose another subdomain"
                        % (sub, owner))


def _platform_secrets(host, values, rep):
    """{job: {field: what reads it}} the platform jobs read, and the backup sets' secrets."""
    need = {}
    if _bool(_get(values, "traefik_acme_enabled")):
        env = _get(values, "traefik_acme_dns_provider_env")
        if isinstance(env, dict):
            for var, field in env.items():
                need.setdefault("traefik", {})[str(field)] = "Traefik's DNS-01 challenge (%s)" % var
    if _bool(_get(values, "traefik_dashboard_enabled")) and _get(values, "traefik_dashboard_users_field"):
        need.setdefault("traefik", {})[str(_get(values, "traefik_dashboard_users_field"))] = \
            "Traefik's dashboard users (htpasswd lines)"
    need["grafana"] = {"admin_password": "Grafana's admin login"}
    if _get(values, "monitoring_alertmanager_smtp_auth_username"):
        need["alertmanager"] = {"smtp_password": "Alertmanager's mail relay login"}
    repos = []
    for name in ("backup_repositories", "backup_repositories_group", "backup_repositories_host"):
        given = _get(values, name)
        if not isinstance(given, list):
            rep.problem(host, name, "must be a list of repositories")
            continue
        repos.extend(given)
    if not repos:
        rep.problem(host, "backup_repositories", "empty: the backup role needs at least one repository "
                    "(for example {name: b2, url: 'b2:bucket:path'})")
        return need
    try:
        known = _repositories(repos)
    except AnsibleFilterError as exc:
        rep.problem(host, "backup_repositories", str(exc).replace("backup_plan: ", "", 1))
        return need
    sets = []
    for name in ("backup_sets", "backup_sets_group", "backup_sets_host"):
        given = _get(values, name)
        if isinstance(given, list):
            sets.extend(given)
    if not sets:
        sets = [{"name": "apps"}]
    for i, bset in enumerate(sets):
        if not isinstance(bset, dict) or not isinstance(bset.get("name"), str):
            rep.problem(host, "backup_sets[%d]" % i, "a backup set needs a name")
            continue
        job = "backup-%s" % bset["name"]
        for rname in bset.get("repositories") or sorted(known):
            repo = known.get(rname)
            if repo is None:
                rep.problem(host, "backup_sets[%d].repositories" % i, "%r is not in backup_repositories" % rname)
                continue
            fields = need.setdefault(job, {})
            fields[repo["password_field"]] = "restic's password of repository %s" % rname
            for field in repo["credentials"]:
                fields[field] = "the credentials of repository %s" % rname
    return need


def _check_secrets(host, secrets, need, rep):
    if secrets is None:
        secrets = {}
    if not isinstance(secrets, dict):
        rep.problem(host, "homelab_secrets", "must be a mapping {job: {field: value}} (in the ansible-vault file)")
        return
    for job in sorted(set(secrets) - set(need)):
        # The vault role writes it anyway (an app of the owner's may read it); often it is a misspelt job name.
        rep.warning(host, "homelab_secrets['%s']" % job, "no job of the collection's roles reads it (known: %s)"
                    % ", ".join(sorted(need)))
    for job in sorted(need):
        given = secrets.get(job)
        if given is not None and not isinstance(given, dict):
            rep.problem(host, "homelab_secrets['%s']" % job, "must be a mapping {field: value}")
            continue
        for field in sorted(need[job]):
            where = "homelab_secrets['%s'].%s" % (job, field)
            value = (given or {}).get(field)
            if value is None or (isinstance(value, str) and not value.strip()):
                rep.problem(host, where, "missing (%s reads it)" % need[job][field])
            elif isinstance(value, str) and PLACEHOLDER in value:
                rep.problem(host, where, "still the placeholder %s from the example vault file" % PLACEHOLDER)


def check_inventory(groups, hosts):
    """Check the inventory as a whole; return (problems, warnings), each a list of one-line messages.

    ``groups``: {group: [host, ...]} (Ansible's ``groups``); ``hosts``: {host: {variable: value}}
    holding only the variables the host has (role defaults are applied here).
    """
    rep = Report()
    groups = {k: list(v or []) for k, v in (groups or {}).items()}
    _check_groups(groups, rep)
    homelab = groups.get("homelab") or []
    ingress = groups.get("ingress") or []
    domains = {}
    for host in homelab:
        values = hosts.get(host) or {}
        _check_domain(host, values, rep, domains)
        _check_addresses(host, values, rep, ingress)
        _check_paths(host, values, rep)
        _check_pools(host, values, rep)
    if len(domains) > 1:
        rep.problem("groups", "homelab_domain", "the hosts disagree: %s; set it once, in group_vars/all"
                    % "; ".join("%s on %s" % (d, _listing(h)) for d, h in sorted(domains.items())))
    # The platform jobs and apps are submitted from the first Nomad server (site.yml), with its variables.
    nomad = groups.get("nomad_servers") or []
    if nomad:
        jobs_host = nomad[0]
        values = hosts.get(jobs_host) or {}
        domain = None
        if values.get("homelab_domain"):
            try:
                domain = fqdn("@", values["homelab_domain"])
            except AnsibleFilterError:
                domain = None
        _check_subdomains(jobs_host, values, domain, rep)
        need = {}
        for app, spec in APPS.items():
            if _bool(_get(values, app + "_enabled")):
                for job, fields in spec["secrets"].items():
                    need.setdefault(job, {}).update(fields)
        for job, fields in _platform_secrets(jobs_host, values, rep).items():
            need.setdefault(job, {}).update(fields)
        # The vault role writes them to Vault from the first Vault server's homelab_secrets.
        vault = groups.get("vault_servers") or []
        secrets_host = vault[0] if vault else jobs_host
        _check_secrets(secrets_host, (hosts.get(secrets_host) or {}).get("homelab_secrets"), need, rep)
    consul = groups.get("consul_servers") or []
    for host in sorted(set(consul) | set(groups.get("vault_servers") or []) | set(nomad)):
        if host not in homelab:
            continue
        values = hosts.get(host) or {}
        for name in ("homelab_bootstrap_file", "homelab_bootstrap_password"):
            if not values.get(name):
                rep.problem(host, name, "not set: the HashiCorp layer keeps its unseal keys and tokens in "
                            "homelab_bootstrap_file, encrypted with homelab_bootstrap_password")
            elif name == "homelab_bootstrap_password" and PLACEHOLDER in str(values[name]):
                rep.problem(host, name, "still the placeholder %s from the example vault file" % PLACEHOLDER)
    return rep.problems, rep.warnings
