# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup_plan filter: backup sets and repositories from inventory as program configs, Nomad jobs
and Vault roles.

One place turns the backup role's variables into everything it deploys, so that
the role's tasks only copy files and submit jobs, and so that the whole plan is
unit-tested: the homelab-backup config of each set (JSON, no secret), the Nomad
jobs (API JSON: ``backup-<set>``, ``backup-<set>-retention``, ``restore-drill``),
the Vault fields each set's secret must hold, and each job's Vault policy and
JWT role (by the vault_job naming rule). Bad input fails here, before anything
changes, with a message naming the field.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.homelab.plugins.filter.backup_vault import backup_vault
from ansible_collections.selfhost.homelab.plugins.filter.vault_job import vault_job
from ansible_collections.selfhost.homelab.plugins.module_utils._restic_retention import (
    RetentionError,
    retention_args,
)

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,40}[a-z0-9])?$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?LW#]+$")
SCHEMES = ("b2:", "s3:", "rest:", "sftp:")
# Per scheme: (field suffix, restic environment variable) of the credentials kept in Vault.
CREDENTIALS = {
    "s3": (("aws_access_key_id", "AWS_ACCESS_KEY_ID"), ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY")),
    "b2": (("b2_account_id", "B2_ACCOUNT_ID"), ("b2_account_key", "B2_ACCOUNT_KEY")),
    "rest": (),
    "sftp": (),
    "local": (),
}
REST_AUTH = (("rest_username", "RESTIC_REST_USERNAME"), ("rest_password", "RESTIC_REST_PASSWORD"))
_NS = 1000000000


def _fail(msg):
    raise AnsibleFilterError("backup_plan: %s" % msg)


def repo_scheme(url, where):
    if not isinstance(url, str) or not url:
        _fail("%s.url is required" % where)
    if url.startswith("/"):
        return "local"
    for prefix in SCHEMES:
        if url.startswith(prefix):
            return prefix[:-1]
    _fail("%s.url %r has an unknown scheme; known: an absolute local path, %s"
          % (where, re.sub(r"(://[^:/@]+:)[^@]+@", r"\1********@", url), ", ".join(SCHEMES)))


def _cron(value, where):
    if not isinstance(value, str) or len(value.split()) not in (5, 6) \
            or not all(_CRON_FIELD.match(f) for f in value.split()):
        _fail("%s %r is not a cron expression (five fields, such as '0 21 * * *')" % (where, value))
    return value


def _field_name(repo, suffix):
    return "%s_%s" % (repo.replace("-", "_"), suffix)


def _repositories(repos):
    if not isinstance(repos, list) or not repos:
        _fail("backup_repositories: at least one repository is required")
    out = {}
    for i, repo in enumerate(repos):
        where = "backup_repositories[%d]" % i
        if not isinstance(repo, dict):
            _fail("%s must be a mapping with name and url" % where)
        name = repo.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            _fail("%s.name %r must be lower-case letters, digits, '-' and '_'" % (where, name))
        if name in out:
            _fail("%s.name %r is used twice" % (where, name))
        unknown = sorted(set(repo) - {"name", "url", "options", "password_field", "rest_auth", "region"})
        if unknown:
            _fail("%s: unknown key(s) %s" % (where, ", ".join(unknown)))
        kind = repo_scheme(repo.get("url"), where)
        if kind == "local" and "//" in repo["url"]:
            _fail("%s.url %r is not a clean absolute path" % (where, repo["url"]))
        options = repo.get("options") or {}
        if not isinstance(options, dict):
            _fail("%s.options must be a mapping such as {b2.connections: 20}" % where)
        creds = list(CREDENTIALS[kind])
        if repo.get("rest_auth"):
            if kind != "rest":
                _fail("%s.rest_auth is only for rest: repositories" % where)
            creds += list(REST_AUTH)
        password_field = repo.get("password_field") or "restic_password"
        fields = {_field_name(name, suffix): var for suffix, var in creds}
        plain = {}
        if repo.get("region"):
            plain["AWS_DEFAULT_REGION"] = str(repo["region"])
        out[name] = {
            "name": name,
            "url": repo["url"],
            "scheme": kind,
            "options": {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in options.items()},
            "password_field": password_field,
            # Vault field -> restic variable
            "credentials": fields,
            "plain_env": plain,
        }
    return out


def _paths(paths, where):
    if isinstance(paths, str) or not isinstance(paths, list) or not paths:
        _fail("%s.paths: at least one path is required (a list)" % where)
    out = []
    for j, item in enumerate(paths):
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not item["path"].startswith("/"):
            _fail("%s.paths[%d] must be an absolute path or {path, dataset}, got %r" % (where, j, item))
        dataset = item.get("dataset") or None
        if dataset is not None and (not isinstance(dataset, str) or "@" in dataset or dataset.startswith("/")):
            _fail("%s.paths[%d].dataset %r is not a ZFS dataset name" % (where, j, dataset))
        out.append({"path": item["path"].rstrip("/") or "/", "dataset": dataset})
    return out


def _task(name, command, args, vault_role, template, resources):
    return {
        "Name": name,
        "Driver": "raw_exec",
        "Config": {"command": command, "args": args},
        "Env": {"PYTHONUNBUFFERED": "1"},
        "Vault": {"Role": vault_role, "ChangeMode": "noop"},
        "Templates": [dict(template, ChangeMode="noop")],
        "Resources": {"CPU": int(resources.get("cpu", 500)), "MemoryMB": int(resources.get("memory", 512))},
        "KillTimeout": 120 * _NS,
    }


def _job(job_id, cron, timezone, datacenters, groups):
    periodic = {"Enabled": True, "SpecType": "cron", "Spec": cron, "ProhibitOverlap": True}
    if timezone:
        periodic["TimeZone"] = timezone
    return {
        "ID": job_id,
        "Name": job_id,
        "Type": "batch",
        "Datacenters": list(datacenters),
        "Periodic": periodic,
        "Meta": {"homelab.role": "backup"},
        "TaskGroups": [
            {
                "Name": gname,
                "Count": 1,
                # A failed backup or drill must show as failed, not be retried into a success hours later.
                "RestartPolicy": {"Attempts": 0, "Interval": 86400 * _NS, "Delay": 15 * _NS, "Mode": "fail"},
                "ReschedulePolicy": {"Attempts": 0, "Interval": 0, "Unlimited": False},
                "Tasks": [task],
            }
            for gname, task in groups
        ],
    }


def backup_plan(settings):
    """Everything the backup role deploys, from its settings (see backup_plan.yml)."""
    if not isinstance(settings, dict):
        _fail("the input must be the role's settings mapping")
    repos = _repositories(settings.get("repositories"))
    sets = settings.get("sets")
    if not isinstance(sets, list) or not sets:
        _fail("backup_sets: at least one backup set is required")
    mount = settings.get("mount") or "kv"
    program = settings.get("program") or "/usr/local/lib/homelab-backup/homelab_backup.py"
    python = settings.get("python") or "/usr/bin/python3"
    config_dir = (settings.get("config_dir") or "/etc/homelab/backup").rstrip("/")
    datacenters = settings.get("datacenters") or ["*"]
    timezone = settings.get("timezone") or None
    resources = settings.get("resources") or {}
    lock_wait = int(settings.get("lock_wait", 3600))
    out_sets, jobs, init, seen = [], [], [], set()
    drill_groups = []
    for i, bset in enumerate(sets):
        where = "backup_sets[%d]" % i
        if not isinstance(bset, dict):
            _fail("%s must be a mapping" % where)
        name = bset.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            _fail("%s.name %r must be lower-case letters, digits, '-' and '_'" % (where, name))
        if name in seen:
            _fail("%s.name %r is used twice" % (where, name))
        seen.add(name)
        unknown = sorted(set(bset) - {"name", "paths", "excludes", "repositories", "cron", "retention",
                                      "retention_cron", "prune", "one_file_system", "drill", "drill_sample"})
        if unknown:
            _fail("%s: unknown key(s) %s" % (where, ", ".join(unknown)))
        paths = _paths(bset.get("paths"), where)
        excludes = bset.get("excludes") or []
        if isinstance(excludes, str) or not all(isinstance(e, str) and e for e in excludes):
            _fail("%s.excludes must be a list of patterns" % where)
        repo_names = bset.get("repositories") or sorted(repos)
        for rname in repo_names:
            if rname not in repos:
                _fail("%s.repositories: %r is not in backup_repositories (known: %s)"
                      % (where, rname, ", ".join(sorted(repos))))
        policy = bset.get("retention", settings.get("retention"))
        try:
            forget_args = retention_args(policy)
        except RetentionError as exc:
            _fail("%s.%s" % (where, exc))
        cron = _cron(bset.get("cron") or settings.get("cron") or "0 21 * * *", where + ".cron")
        retention_cron = _cron(bset.get("retention_cron") or settings.get("retention_cron") or "0 23 * * *",
                               where + ".retention_cron")
        sample = bset.get("drill_sample", settings.get("drill_sample", 20))
        if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
            _fail("%s.drill_sample must be a whole number of at least 1, got %r" % (where, sample))
        job_id = "backup-%s" % name
        fields, cfg_repos = {}, []
        for rname in repo_names:
            repo = repos[rname]
            fields[repo["password_field"]] = repo["password_field"].upper()
            env = {}
            for field, var in sorted(repo["credentials"].items()):
                fields[field] = field.upper()
                env[var] = field.upper()
            cfg_repos.append({"name": rname, "url": repo["url"], "options": repo["options"],
                              "password_env": repo["password_field"].upper(), "env": env,
                              "plain_env": repo["plain_env"]})
            if rname not in {x["repository"] for x in init}:
                init.append({"repository": rname, "set": name, "secret": job_id, "url": repo["url"],
                             "options": repo["options"], "password_field": repo["password_field"],
                             "env": {var: field for field, var in repo["credentials"].items()},
                             "plain_env": repo["plain_env"]})
        config = {
            "set": name,
            "restic": settings.get("restic") or "restic",
            "zfs": settings.get("zfs") or "zfs",
            "host": settings.get("host") or name,
            "sources": paths,
            "excludes": list(excludes),
            "one_file_system": bool(bset.get("one_file_system", False)),
            "repositories": cfg_repos,
            "forget_args": forget_args,
            "prune": bool(bset.get("prune", settings.get("prune", True))),
            "textfile_dir": settings.get("textfile_dir") or "/var/lib/prometheus/node-exporter",
            "state_dir": settings.get("state_dir") or "/var/lib/homelab-backup",
            "cache_dir": settings.get("cache_dir") or "/var/cache/homelab-backup",
            "scratch_dir": settings.get("scratch_dir") or "/var/tmp/homelab-restore-drill",
            "drill_sample": sample,
        }
        for key in ("textfile_dir", "state_dir", "cache_dir", "scratch_dir"):
            if not config[key].startswith("/"):
                _fail("%s must be an absolute path, got %r" % (key, config[key]))
        config_path = "%s/%s.json" % (config_dir, name)
        secret = vault_job(job_id, mount, fields=fields)
        retention_id = "%s-retention" % job_id
        out_sets.append({"name": name, "config": config, "config_path": config_path, "job": job_id,
                         "secret": job_id, "secret_path": secret["path"], "fields": sorted(fields)})
        jobs.append(_job(job_id, cron, timezone, datacenters, [
            ("backup", _task("backup", python, [program, "backup", "--config", config_path], job_id,
                             secret["template_api"], resources))]))
        jobs.append(_job(retention_id, retention_cron, timezone, datacenters, [
            ("retention", _task("retention", python,
                                [program, "forget", "--config", config_path, "--lock-wait", str(lock_wait)],
                                retention_id, secret["template_api"], resources))]))
        if bset.get("drill", True):
            drill_groups.append(("drill-%s" % name, _task(
                "drill", python, [program, "drill", "--config", config_path, "--lock-wait", str(lock_wait)],
                "restore-drill", secret["template_api"], resources)))
    if settings.get("drill_enabled", True) and drill_groups:
        drill_cron = _cron(settings.get("drill_cron") or "0 4 * * 0", "backup_drill_cron")
        jobs.append(_job("restore-drill", drill_cron, timezone, datacenters, drill_groups))
    # The same job list and policy paths the vault role computes from inventory (backup_vault filter).
    vault_plan = backup_vault(sets, mount, drill_enabled=settings.get("drill_enabled", True))
    vault = [_vault(vault_job(job, mount, extra_paths=vault_plan["extra_paths"].get(job)))
             for job in vault_plan["jobs"]]
    return {"sets": out_sets, "jobs": jobs, "vault": vault, "init": init}


def _vault(spec):
    return {"name": spec["job"], "policy": spec["policy"], "jwt_role": spec["jwt_role"]}


class FilterModule:
    """selfhost.homelab backup filters."""

    def filters(self):
        return {"backup_plan": backup_plan}
