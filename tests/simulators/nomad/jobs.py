"""Job canonicalisation, validation and the plan diff, shaped like Nomad's.

Canonicalisation fills the defaults Nomad's ``api.Job.Canonicalize`` and the
server fill, so a job submitted without them compares equal to the stored one.
The diff follows ``nomad/structs/diff.go``: JobDiff -> TaskGroupDiff -> TaskDiff,
each with ``Type`` (None/Added/Deleted/Edited), ``Fields`` (FieldDiff: Type, Name,
Old, New, Annotations) and ``Objects`` (ObjectDiff: Type, Name, Fields, Objects),
contextual (unchanged fields of an edited object are listed with Type None).
"""

from __future__ import annotations

import copy
from typing import Any

SEC = 10**9

# Fields the server owns: never part of a diff, never taken from a submission.
SERVER_FIELDS = ("Status", "StatusDescription", "Version", "Stable", "CreateIndex", "ModifyIndex",
                 "JobModifyIndex", "SubmitTime", "Stop", "Dispatched", "ParentID", "VersionTag")


class ValidationError(Exception):
    pass


def _restart_defaults(job_type: str) -> dict:
    if job_type == "batch":
        return {"Attempts": 3, "Interval": 86400 * SEC, "Delay": 15 * SEC, "Mode": "fail", "RenderTemplates": False}
    return {"Attempts": 2, "Interval": 1800 * SEC, "Delay": 15 * SEC, "Mode": "fail", "RenderTemplates": False}


def _reschedule_defaults(job_type: str) -> dict | None:
    if job_type == "batch":
        return {"Attempts": 1, "Interval": 86400 * SEC, "Delay": 5 * SEC, "DelayFunction": "constant",
                "MaxDelay": 0, "Unlimited": False}
    if job_type == "service":
        return {"Attempts": 0, "Interval": 0, "Delay": 30 * SEC, "DelayFunction": "exponential",
                "MaxDelay": 3600 * SEC, "Unlimited": True}
    return None


def _update_defaults() -> dict:
    return {"Stagger": 30 * SEC, "MaxParallel": 1, "HealthCheck": "checks", "MinHealthyTime": 10 * SEC,
            "HealthyDeadline": 300 * SEC, "ProgressDeadline": 600 * SEC, "AutoRevert": False, "AutoPromote": False,
            "Canary": 0}


def canonicalize(job: dict) -> dict:
    job = copy.deepcopy(job)
    job.setdefault("Name", job.get("ID"))
    job.setdefault("Region", "global")
    job.setdefault("Namespace", "default")
    job.setdefault("Type", "service")
    job.setdefault("Priority", 50)
    job.setdefault("AllAtOnce", False)
    if not job.get("Datacenters"):
        job["Datacenters"] = ["*"]
    job.setdefault("NodePool", "default")
    for key in ("Constraints", "Affinities", "Spreads"):
        job.setdefault(key, None)
    job.setdefault("Meta", None)
    job_type = job["Type"]
    if job.get("Periodic"):
        job["Periodic"].setdefault("Enabled", True)
        job["Periodic"].setdefault("ProhibitOverlap", False)
        job["Periodic"].setdefault("TimeZone", "UTC")
        job["Periodic"].setdefault("SpecType", "cron")
    job_update = job.get("Update")
    if job_type == "service" and job_update is None:
        job_update = {}
    for group in job.get("TaskGroups") or []:
        group.setdefault("Count", 1)
        restart = _restart_defaults(job_type)
        restart.update(group.get("RestartPolicy") or {})
        group["RestartPolicy"] = restart
        resched = _reschedule_defaults(job_type)
        if resched is not None:
            resched.update(group.get("ReschedulePolicy") or {})
        group["ReschedulePolicy"] = resched
        disk = {"SizeMB": 300, "Sticky": False, "Migrate": False}
        disk.update(group.get("EphemeralDisk") or {})
        group["EphemeralDisk"] = disk
        if job_type == "service":
            update = _update_defaults()
            update.update(job_update or {})
            update.update(group.get("Update") or {})
            group["Update"] = update
            migrate = {"MaxParallel": 1, "HealthCheck": "checks", "MinHealthyTime": 10 * SEC,
                       "HealthyDeadline": 300 * SEC}
            migrate.update(group.get("Migrate") or {})
            group["Migrate"] = migrate
        else:
            group.setdefault("Update", None)
        for net in group.get("Networks") or []:
            net.setdefault("Mode", "host")
            for port in (net.get("ReservedPorts") or []) + (net.get("DynamicPorts") or []):
                port.setdefault("Value", 0)
                port.setdefault("To", 0)
                port.setdefault("HostNetwork", "default")
        for vol in (group.get("Volumes") or {}).values():
            vol.setdefault("ReadOnly", False)
            vol.setdefault("AccessMode", "")
            vol.setdefault("AttachmentMode", "")
            vol.setdefault("PerAlloc", False)
        for svc in group.get("Services") or []:
            _canon_service(svc)
        for task in group.get("Tasks") or []:
            _canon_task(task, group)
    if job_type == "service":
        job["Update"] = {**_update_defaults(), **(job_update or {})}
    return job


def _canon_service(svc: dict) -> None:
    svc.setdefault("Provider", "consul")
    svc.setdefault("AddressMode", "auto")
    svc.setdefault("OnUpdate", "require_healthy")
    svc.setdefault("Tags", None)
    for check in svc.get("Checks") or []:
        check.setdefault("OnUpdate", svc["OnUpdate"])
        check.setdefault("SuccessBeforePassing", 0)
        check.setdefault("FailuresBeforeCritical", 0)
        if check.get("Type") in ("http", "tcp", "grpc") and not check.get("PortLabel"):
            check["PortLabel"] = svc.get("PortLabel", "")
        if check.get("Type") == "http":
            check.setdefault("Method", "GET")
            check.setdefault("Protocol", "http")


def _canon_task(task: dict, group: dict) -> None:
    task.setdefault("Config", None)
    task.setdefault("Env", None)
    task.setdefault("Meta", None)
    task.setdefault("KillTimeout", 5 * SEC)
    task.setdefault("Leader", False)
    logs = {"MaxFiles": 10, "MaxFileSizeMB": 10, "Disabled": False}
    logs.update(task.get("LogConfig") or {})
    task["LogConfig"] = logs
    res = {"CPU": 100, "Cores": 0, "MemoryMB": 300, "MemoryMaxMB": 0}
    res.update(task.get("Resources") or {})
    task["Resources"] = res
    restart = dict(group["RestartPolicy"])
    restart.update(task.get("RestartPolicy") or {})
    task["RestartPolicy"] = restart
    for tmpl in task.get("Templates") or []:
        tmpl.setdefault("ChangeMode", "restart")
        if tmpl["ChangeMode"] == "signal":
            tmpl.setdefault("ChangeSignal", "")
        tmpl.setdefault("Splay", 5 * SEC)
        tmpl.setdefault("Perms", "0644")
        tmpl.setdefault("LeftDelim", "{{")
        tmpl.setdefault("RightDelim", "}}")
        tmpl.setdefault("Envvars", False)
        tmpl.setdefault("ErrMissingKey", False)
        tmpl.setdefault("Uid", -1)  # -1: the file keeps the agent's owner
        tmpl.setdefault("Gid", -1)
    if task.get("Vault"):
        vault = {"Env": True, "DisableFile": False, "ChangeMode": "restart", "Cluster": "default",
                 "AllowTokenExpiration": False}
        vault.update(task["Vault"])
        task["Vault"] = vault
    for mount in task.get("VolumeMounts") or []:
        mount.setdefault("ReadOnly", False)
        mount.setdefault("PropagationMode", "private")
    for svc in task.get("Services") or []:
        _canon_service(svc)
    for ident in ([task["Identity"]] if task.get("Identity") else []) + (task.get("Identities") or []):
        ident.setdefault("Env", False)
        ident.setdefault("File", False)
        ident.setdefault("ChangeMode", "")


def admit(job: dict, vault_default_identity: bool = True) -> dict:
    """The server's admission mutators (Nomad >= 1.7): every task gets the default workload identity,
    and a task with a vault block the implicit ``vault_default`` identity when the server has one."""
    job = copy.deepcopy(job)
    for group in job.get("TaskGroups") or []:
        for task in group.get("Tasks") or []:
            if not task.get("Identity"):
                task["Identity"] = {"Name": "default", "Audience": ["nomad.io"], "Env": False, "File": False,
                                    "ChangeMode": "", "ChangeSignal": "", "ServiceName": "", "TTL": 0}
            names = [i.get("Name") for i in task.get("Identities") or []]
            if task.get("Vault") and vault_default_identity and "vault_default" not in names:
                task["Identities"] = (task.get("Identities") or []) + [{
                    "Name": "vault_default", "Audience": ["vault.io"], "Env": False, "File": False,
                    "ChangeMode": "", "ChangeSignal": "", "ServiceName": "", "TTL": 3600 * SEC}]
    return job


def validate(job: dict, vault_default_identity: bool = True) -> list[str]:
    """Answer Nomad's multierror lines for an invalid canonical job, empty when valid."""
    errors = []
    if not job.get("ID"):
        errors.append("Missing job ID")
    elif " " in job["ID"]:
        errors.append("Job ID contains a space")
    if job.get("Type") not in ("service", "batch", "system", "sysbatch"):
        errors.append('Invalid job type: "%s"' % job.get("Type"))
    groups = job.get("TaskGroups") or []
    if not groups:
        errors.append("Missing job task groups")
    if job.get("Periodic") and job["Type"] not in ("batch", "sysbatch"):
        errors.append('Periodic can only be used with "batch" scheduler')
    names = set()
    for group in groups:
        name = group.get("Name", "")
        if name in names:
            errors.append("Job task group %d redefines '%s'" % (len(names) + 1, name))
        names.add(name)
        tasks = group.get("Tasks") or []
        if not tasks:
            errors.append("Task group %s validation failed: Missing tasks for task group" % name)
        for task in tasks:
            if not task.get("Driver"):
                errors.append("Task group %s validation failed: Task %s validation failed: Missing task driver"
                              % (name, task.get("Name")))
            if task.get("Vault") and not vault_default_identity and not any(
                    i.get("Name") == "vault_default" for i in task.get("Identities") or []):
                errors.append("Task group %s validation failed: Task %s validation failed: Task %s has a vault "
                              "block but no identity for Vault and no default identity is configured (workload "
                              "identity is required from Nomad 1.10)" % (name, task["Name"], task["Name"]))
        for mount_task in tasks:
            for mount in mount_task.get("VolumeMounts") or []:
                if mount.get("Volume") not in (group.get("Volumes") or {}):
                    errors.append("Task group %s validation failed: Task %s validation failed: Volume Mount "
                                  "referenced undefined volume %s" % (name, mount_task["Name"], mount.get("Volume")))
    return errors


def multierror(errors: list[str]) -> str:
    return "%d error%s occurred:\n%s\n\n" % (
        len(errors), "" if len(errors) == 1 else "s", "\n".join("\t* " + e for e in errors))


# ---- diff ---------------------------------------------------------------

# Names Nomad gives the objects of each field in a diff.
OBJECT_NAMES = {
    "Constraints": "Constraint", "Affinities": "Affinity", "Spreads": "Spread", "Networks": "Network",
    "Services": "Service", "Checks": "Check", "Templates": "Template", "Artifacts": "Artifact",
    "VolumeMounts": "VolumeMount", "ReservedPorts": "Static Port", "DynamicPorts": "Dynamic Port",
    "RestartPolicy": "RestartPolicy", "ReschedulePolicy": "ReschedulePolicy", "LogConfig": "LogConfig",
    "Identities": "Identity", "Volumes": "Volume", "ParameterizedJob": "ParameterizedJob",
}
FLAT_MAPS = ("Meta", "Env")
SKIP = set(SERVER_FIELDS) | {"TaskGroups", "Tasks", "ID", "Name"}


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _field(name: str, old: Any, new: Any, contextual: bool) -> dict | None:
    o, n = _fmt(old), _fmt(new)
    if old is None and new is not None:
        kind = "Added"
    elif new is None and old is not None:
        kind = "Deleted"
    elif o != n:
        kind = "Edited"
    else:
        if not contextual:
            return None
        kind = "None"
    return {"Type": kind, "Name": name, "Old": o, "New": n, "Annotations": None}


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k in value:
            _flatten("%s[%s]" % (prefix, k) if prefix else k, value[k], out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _flatten("%s[%d]" % (prefix, i), v, out)
    else:
        out[prefix] = value


def _is_scalar(v: Any) -> bool:
    return not isinstance(v, (dict, list))


def _diff_body(old: dict | None, new: dict | None, contextual: bool) -> tuple[list, list]:
    old, new = old or {}, new or {}
    fields: list[dict] = []
    objects: list[dict] = []
    for key in sorted(set(old) | set(new)):
        if key in SKIP:
            continue
        o, n = old.get(key), new.get(key)
        if key in FLAT_MAPS or (key == "Config"):
            fo: dict[str, Any] = {}
            fn: dict[str, Any] = {}
            _flatten("", o or {}, fo)
            _flatten("", n or {}, fn)
            flat = []
            for k in sorted(set(fo) | set(fn)):
                fd = _field(k if key == "Config" else "%s[%s]" % (key, k), fo.get(k), fn.get(k), contextual)
                if fd:
                    flat.append(fd)
            if key == "Config":
                obj = _object("Config", o, n, flat, [], contextual)
                if obj:
                    objects.append(obj)
            else:
                fields.extend(f for f in flat if f["Type"] != "None" or o == n or contextual)
            continue
        if _is_scalar(o) and _is_scalar(n):
            fd = _field(key, o, n, contextual)
            if fd:
                fields.append(fd)
        elif isinstance(o, list) and all(_is_scalar(x) for x in o) and isinstance(n, list) and all(
                _is_scalar(x) for x in n) or (o is None and isinstance(n, list) and all(_is_scalar(x) for x in n)) \
                or (n is None and isinstance(o, list) and all(_is_scalar(x) for x in o)):
            sub = []
            for item in sorted(set(map(_fmt, o or [])) | set(map(_fmt, n or []))):
                was, now = item in map(_fmt, o or []), item in map(_fmt, n or [])
                fd = _field(key, item if was else None, item if now else None, contextual)
                if fd:
                    sub.append(fd)
            obj = _object(key, o, n, sub, [], contextual)
            if obj:
                objects.append(obj)
        elif isinstance(o, list) or isinstance(n, list):
            name = OBJECT_NAMES.get(key, key)
            olds, news = list(o or []), list(n or [])
            for item in olds:
                if item in news:
                    news.remove(item)
                    if contextual:
                        obj = _struct(name, item, item, contextual)
                        if obj:
                            objects.append(obj)
                else:
                    objects.append(_struct(name, item, None, contextual))
            for item in news:
                objects.append(_struct(name, None, item, contextual))
        else:  # nested struct (or a map of structs such as Volumes)
            if key == "Volumes":
                for vname in sorted(set(o or {}) | set(n or {})):
                    obj = _struct("Volume", (o or {}).get(vname), (n or {}).get(vname), contextual)
                    if obj and (obj["Type"] != "None" or contextual):
                        objects.append(obj)
                continue
            obj = _struct(OBJECT_NAMES.get(key, key), o, n, contextual)
            if obj:
                objects.append(obj)
    objects.sort(key=lambda x: x["Name"])
    return fields, objects


def _object(name: str, old: Any, new: Any, fields: list, objects: list, contextual: bool) -> dict | None:
    if old in (None, [], {}) and new in (None, [], {}):
        return None
    if old in (None, [], {}):
        kind = "Added"
    elif new in (None, [], {}):
        kind = "Deleted"
    elif any(f["Type"] != "None" for f in fields) or any(o["Type"] != "None" for o in objects):
        kind = "Edited"
    else:
        kind = "None"
    if kind == "None" and not contextual:
        return None
    return {"Type": kind, "Name": name, "Fields": fields or None, "Objects": objects or None}


def _struct(name: str, old: Any, new: Any, contextual: bool) -> dict | None:
    if not isinstance(old, (dict, type(None))) or not isinstance(new, (dict, type(None))):
        return None
    fields, objects = _diff_body(old, new, contextual or old is None or new is None)
    obj = _object(name, old, new, fields, objects, contextual)
    if obj and obj["Type"] == "None" and not contextual:
        return None
    return obj


def _kind(old: Any, new: Any, fields: list, objects: list, children: list) -> str:
    if old is None:
        return "Added"
    if new is None:
        return "Deleted"
    if any(x["Type"] != "None" for x in fields + objects + children):
        return "Edited"
    return "None"


def job_diff(old: dict | None, new: dict | None, contextual: bool = True) -> dict:
    fields, objects = _diff_body(old, new, contextual)
    groups = []
    old_groups = {g["Name"]: g for g in (old or {}).get("TaskGroups") or []}
    new_groups = {g["Name"]: g for g in (new or {}).get("TaskGroups") or []}
    for gname in sorted(set(old_groups) | set(new_groups)):
        og, ng = old_groups.get(gname), new_groups.get(gname)
        gfields, gobjects = _diff_body(og, ng, contextual or og is None or ng is None)
        tasks = []
        old_tasks = {t["Name"]: t for t in (og or {}).get("Tasks") or []}
        new_tasks = {t["Name"]: t for t in (ng or {}).get("Tasks") or []}
        for tname in sorted(set(old_tasks) | set(new_tasks)):
            ot, nt = old_tasks.get(tname), new_tasks.get(tname)
            tfields, tobjects = _diff_body(ot, nt, contextual or ot is None or nt is None)
            tkind = _kind(ot, nt, tfields, tobjects, [])
            ann = {"Added": ["forces create"], "Deleted": ["forces destroy"],
                   "Edited": ["forces create/destroy update"]}.get(tkind)
            tasks.append({"Type": tkind, "Name": tname, "Fields": tfields or None, "Objects": tobjects or None,
                          "Annotations": ann})
        gkind = _kind(og, ng, gfields, gobjects, tasks)
        count = (ng or og or {}).get("Count", 1)
        if gkind == "Added":
            updates = {"create": count}
        elif gkind == "Deleted":
            updates = {"destroy": (og or {}).get("Count", 1)}
        elif any(t["Type"] != "None" for t in tasks):
            updates = {"create/destroy update": count}
        elif gkind == "Edited":
            updates = {"in-place update": count}
        else:
            updates = {"ignore": count}
        groups.append({"Type": gkind, "Name": gname, "Fields": gfields or None, "Objects": gobjects or None,
                       "Tasks": tasks or None, "Updates": updates})
    kind = _kind(old, new, fields, objects, groups)
    return {"Type": kind, "ID": (new or old or {}).get("ID", ""), "Fields": fields or None,
            "Objects": objects or None, "TaskGroups": groups or None}
