# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restic_repo module's argument spec and orchestration (one action per task)."""

from __future__ import annotations

import os

from ansible_collections.selfhost.homelab.plugins.module_utils._restic import (
    PASSWORD_ENV,
    Restic,
    ResticError,
    redact_repository,
    repository_url_password,
    snapshot_brief,
)
from ansible_collections.selfhost.homelab.plugins.module_utils._restic_retention import (
    RetentionError,
    retention_args,
)

ACTIONS = ["init", "backup", "forget", "check", "snapshots", "restore", "verify", "unlock"]

ARGUMENT_SPEC = dict(
    action=dict(type="str", default="init", choices=ACTIONS),
    repository=dict(type="str", required=True),
    password=dict(type="str", no_log=True),
    password_file=dict(type="path", no_log=False),
    password_command=dict(type="str", no_log=True),
    binary=dict(type="str", default="restic"),
    options=dict(type="dict", default={}),
    cache_dir=dict(type="path"),
    no_cache=dict(type="bool", default=False),
    aws_access_key_id=dict(type="str", no_log=True),
    aws_secret_access_key=dict(type="str", no_log=True),
    aws_session_token=dict(type="str", no_log=True),
    aws_default_region=dict(type="str"),
    b2_account_id=dict(type="str", no_log=True),
    b2_account_key=dict(type="str", no_log=True),
    paths=dict(type="list", elements="path"),
    exclude=dict(type="list", elements="str", default=[]),
    exclude_file=dict(type="list", elements="path", default=[]),
    one_file_system=dict(type="bool", default=False),
    tags=dict(type="list", elements="str", default=[]),
    host=dict(type="str"),
    retention=dict(type="dict"),
    group_by=dict(type="str"),
    prune=dict(type="bool", default=False),
    read_data_subset=dict(type="str"),
    snapshot=dict(type="str", default="latest"),
    target=dict(type="path"),
    include=dict(type="list", elements="str", default=[]),
    verify_dir=dict(type="path"),
    remove_all_locks=dict(type="bool", default=False),
    unlock_stale=dict(type="bool", default=False),
)


def validate(module):
    """Fail on bad input with one line naming the field, before restic runs at all."""
    p = module.params
    if not p["repository"].strip():
        module.fail_json(msg="repository must not be empty")
    if not any(p.get(k) for k in ("password", "password_file", "password_command")) and not any(
        os.environ.get(name) for name in PASSWORD_ENV
    ):
        module.fail_json(
            msg="one of password, password_file or password_command is required "
            "(or RESTIC_PASSWORD/RESTIC_PASSWORD_FILE/RESTIC_PASSWORD_COMMAND in the environment)"
        )
    if p.get("password_file") and not os.access(p["password_file"], os.R_OK):
        module.fail_json(msg="password_file %s does not exist or is not readable" % p["password_file"])
    for key, value in (p.get("options") or {}).items():
        if not key or "=" in key or any(c.isspace() for c in key):
            module.fail_json(msg="options: %r is not a restic extended option name (like b2.connections)" % key)
        if value is None or isinstance(value, (dict, list)):
            module.fail_json(msg="options.%s must be a single value, got %r" % (key, value))
    if p["action"] in ("backup", "verify"):
        if not p["paths"]:
            module.fail_json(msg="paths must name at least one file or directory for action=%s" % p["action"])
        for path in p["paths"]:
            if not os.path.lexists(path):
                module.fail_json(msg="paths: %s does not exist" % path)
    if p["action"] == "forget":
        try:
            retention_args(p["retention"])
        except RetentionError as exc:
            module.fail_json(msg=str(exc))
    if p["action"] == "restore" and os.path.exists(p["target"]) and not os.path.isdir(p["target"]):
        module.fail_json(msg="target %s exists and is not a directory" % p["target"])
    for tag in p["tags"]:
        if not tag or "," in tag:
            module.fail_json(msg="tags: %r is not a valid tag (empty, or contains a comma)" % tag)


def _binary(module):
    binary = module.params["binary"]
    if os.path.sep in binary:
        if not os.access(binary, os.X_OK):
            module.fail_json(msg="binary %s is not an executable file" % binary)
        return binary
    found = module.get_bin_path(binary)
    if not found:
        module.fail_json(msg="binary: restic executable %r not found in PATH; install restic (apt install restic)"
                         % binary)
    return found


def run_module(module):
    p = module.params
    url_password = repository_url_password(p["repository"])
    if url_password:
        module.no_log_values.add(url_password)
    validate(module)
    restic = Restic(module, _binary(module))
    result = dict(changed=False, action=p["action"], repository=redact_repository(p["repository"]),
                  commands=restic.commands)
    try:
        restic.detect_version()
        result["restic_version"] = restic.version_string
        if p["unlock_stale"] and p["action"] != "unlock" and not module.check_mode:
            restic.unlock_stale()
        result.update(ACTION_HANDLERS[p["action"]](module, restic))
    except ResticError as exc:
        result.update(exc.details)
        result["error_kind"] = exc.kind
        module.fail_json(msg=exc.msg, **result)
    warning = result.pop("warning", None)
    if warning:
        module.warn(warning)
    module.exit_json(**result)


def _init(module, restic):
    exists, config = restic.probe()
    out = {"initialized": False, "changed": False}
    if not exists:
        out.update(initialized=True, changed=True)
        if not module.check_mode:
            restic.init()
            exists, config = restic.probe()
    if config:
        out["config"] = config
    out["diff"] = {"before": {"exists": not out["changed"]}, "after": {"exists": True}}
    return out


def _backup(module, restic):
    res = restic.backup(module.params, module.check_mode)
    paths = module.params["paths"]
    new = res["snapshot_id"] or ("(new snapshot)" if res["changed"] else None)
    res["diff"] = {
        "before": {"paths": paths, "new_snapshot": None},
        "after": {"paths": paths, "new_snapshot": new},
    }
    return res


def _forget(module, restic):
    res = restic.forget(module.params, module.check_mode)
    removed_ids = {s["id"] for s in res["removed"]}
    before = sorted(s["short_id"] for s in res["kept"] + res["removed"])
    after = sorted(s["short_id"] for s in res["kept"] if s["id"] not in removed_ids)
    res["diff"] = {"before": {"snapshots": before}, "after": {"snapshots": after}}
    return res


def _check(module, restic):
    check = restic.check(module.params)
    out = {"check": check}
    if not check["ok"]:
        raise ResticError(
            "restic check found errors in the repository (%d): %s"
            % (check["num_errors"], (check["errors"] or check["output"] or ["see check.output"])[0]),
            check=check,
        )
    return out


def _snapshots(module, restic):
    return {"snapshots": restic.snapshots(module.params)}


def _restore(module, restic):
    p = module.params
    res = restic.restore(p, p["target"], module.check_mode)
    res["diff"] = {"before": {"target": p["target"]}, "after": {"target": p["target"], "restored": res["snapshot"]}}
    return res


def _verify(module, restic):
    verify = restic.verify(module.params)
    if not verify["ok"]:
        raise ResticError(
            "verify failed: %d differ, %d missing from the snapshot, %d only in the snapshot (first: %s)"
            % (
                len(verify["differ"]),
                len(verify["missing"]),
                len(verify["extra"]),
                (verify["differ"] + verify["missing"] + verify["extra"])[0],
            ),
            verify=verify,
        )
    return {"verify": verify}


def _unlock(module, restic):
    res = restic.unlock(module.params, module.check_mode)
    after = [] if module.check_mode and module.params["remove_all_locks"] else res["locks_after"]
    res["diff"] = {"before": {"locks": res["locks_before"]}, "after": {"locks": after}}
    return res


ACTION_HANDLERS = {
    "init": _init,
    "backup": _backup,
    "forget": _forget,
    "check": _check,
    "snapshots": _snapshots,
    "restore": _restore,
    "verify": _verify,
    "unlock": _unlock,
}

__all__ = ["ARGUMENT_SPEC", "run_module", "snapshot_brief"]
