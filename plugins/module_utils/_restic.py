# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""restic for the restic_repo module: one runner, the repository probe, actions.

Every restic command runs through ``Restic.run``: argv is built from the
repository's global options plus the action's own flags, secrets travel only
in the child's environment (never in argv, never on disk), and JSON output is
parsed in one place.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile

from ansible_collections.selfhost.homelab.plugins.module_utils._restic_retention import (
    RetentionError,
    retention_args,
)

# Exit codes restic >= 0.17 gives (https://restic.readthedocs.io/en/stable/075_scripting.html).
RC_INCOMPLETE = 3
RC_NO_REPOSITORY = 10
RC_LOCKED = 11
RC_WRONG_PASSWORD = 12
EXIT_CODES_SINCE = (0, 17, 0)
SKIP_IF_UNCHANGED_SINCE = (0, 17, 0)
CHECK_JSON_SINCE = (0, 18, 0)

NO_REPOSITORY = "no_repository"
LOCKED = "locked"
WRONG_PASSWORD = "wrong_password"
OTHER = "error"

# Older restic (Debian 12 ships 0.14) exits 1 for all three. The fallback reads
# stderr, but only lines restic prints for exactly these cases; anything else
# is OTHER, and OTHER never leads to an init.
#   no repository: cmd/restic/global.go prints the "Is there a repository"
#   hint only when the config file is missing (backend IsNotExist).
_OLD_NO_REPO = (
    re.compile(r"^Fatal: unable to open config file: ", re.M),
    re.compile(r"^Is there a repository at the following location\?$", re.M),
)
_OLD_WRONG_PASSWORD = re.compile(r"^Fatal: wrong password or no key found$", re.M)
_OLD_LOCKED = re.compile(r"^(Fatal: )?unable to create lock in backend: repository is already locked", re.M)

_VERSION = re.compile(r"\brestic (\d+)\.(\d+)\.(\d+)")
_USERINFO = re.compile(r"^(?P<scheme>[a-z0-9]+:(?:[a-z0-9+]+:)?//)(?P<user>[^/@:]*)(?::(?P<pw>[^/@]*))?@")

PASSWORD_ENV = ("RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND")


class ResticError(Exception):
    def __init__(self, msg, kind=OTHER, **details):
        super().__init__(msg)
        self.msg = msg
        self.kind = kind
        self.details = details


def parse_version(text):
    match = _VERSION.search(text or "")
    if not match:
        return None
    return tuple(int(part) for part in match.groups())


def classify_failure(version, rc, stderr):
    """What a failed repository open means: NO_REPOSITORY, LOCKED, WRONG_PASSWORD or OTHER."""
    if version is not None and version >= EXIT_CODES_SINCE:
        return {RC_NO_REPOSITORY: NO_REPOSITORY, RC_LOCKED: LOCKED, RC_WRONG_PASSWORD: WRONG_PASSWORD}.get(rc, OTHER)
    if rc != 1:
        return OTHER
    stderr = stderr or ""
    if _OLD_WRONG_PASSWORD.search(stderr):
        return WRONG_PASSWORD
    if _OLD_LOCKED.search(stderr):
        return LOCKED
    if all(pattern.search(stderr) for pattern in _OLD_NO_REPO):
        return NO_REPOSITORY
    return OTHER


def redact_repository(repository):
    """The repository location without a password in its URL (rest:https://u:pw@host/)."""
    match = _USERINFO.match(repository)
    if match and match.group("pw") is not None:
        return "%s%s:********@%s" % (match.group("scheme"), match.group("user"), repository[match.end():])
    return repository


def repository_url_password(repository):
    match = _USERINFO.match(repository)
    return match.group("pw") if match and match.group("pw") else None


def json_lines(text):
    """restic --json for long-running commands prints one JSON object a line."""
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def summary_of(text):
    summaries = [m for m in json_lines(text) if m.get("message_type") == "summary"]
    return summaries[-1] if summaries else None


def snapshot_brief(snap):
    return {
        "id": snap.get("id"),
        "short_id": snap.get("short_id") or (snap.get("id") or "")[:8],
        "time": snap.get("time"),
        "hostname": snap.get("hostname"),
        "paths": snap.get("paths") or [],
        "tags": snap.get("tags") or [],
    }


class Restic:
    """One repository, one restic binary, one environment."""

    def __init__(self, module, binary):
        self.module = module
        self.binary = binary
        params = module.params
        self.repository = params["repository"]
        self.commands = []
        self.env = self._environment(params)
        self.global_args = ["-r", self.repository]
        for key, value in sorted((params.get("options") or {}).items()):
            if isinstance(value, bool):
                value = "true" if value else "false"
            self.global_args += ["-o", "%s=%s" % (key, value)]
        if params.get("cache_dir"):
            self.global_args += ["--cache-dir", params["cache_dir"]]
        if params.get("no_cache"):
            self.global_args.append("--no-cache")
        self.version = None

    @staticmethod
    def _environment(params):
        env = {}
        sources = {"RESTIC_PASSWORD": "password", "RESTIC_PASSWORD_FILE": "password_file",
                   "RESTIC_PASSWORD_COMMAND": "password_command"}
        if any(params.get(opt) for opt in sources.values()):
            # The password source the task names wins: clear the others so an
            # inherited RESTIC_PASSWORD_* cannot take precedence inside restic.
            for name, opt in sources.items():
                env[name] = params.get(opt) or ""
        for opt, name in (
            ("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
            ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
            ("aws_session_token", "AWS_SESSION_TOKEN"),
            ("aws_default_region", "AWS_DEFAULT_REGION"),
            ("b2_account_id", "B2_ACCOUNT_ID"),
            ("b2_account_key", "B2_ACCOUNT_KEY"),
        ):
            if params.get(opt):
                env[name] = params[opt]
        return env

    def argv(self, *args):
        return [self.binary] + self.global_args + list(args)

    def run(self, *args, data=None):
        cmd = self.argv(*args)
        self.commands.append(cmd)
        rc, out, err = self.module.run_command(cmd, environ_update=self.env, data=data, binary_data=data is not None)
        return rc, out, err

    def fail(self, what, rc, out, err, cmd=None, kind=None):
        kind = kind or classify_failure(self.version, rc, err)
        hints = {
            WRONG_PASSWORD: "wrong password for the repository (or no key found); nothing was changed",
            LOCKED: "the repository is locked by another process; if that lock is stale, "
            "run action=unlock (opt-in) and retry",
            NO_REPOSITORY: "no repository at this location; run action=init first",
        }
        first = "restic exited %d" % rc
        for line in (err or "").splitlines():
            if line.startswith("{"):
                # restic >= 0.17 with --json reports the fatal error as JSON on stderr
                message = next((m.get("message") for m in json_lines(line) if m.get("message")), None)
                if message:
                    first = message.splitlines()[0]
                    break
            elif line.strip():
                first = line.strip()
                break
        msg = "restic %s failed: %s" % (what, hints.get(kind, first))
        raise ResticError(msg, kind=kind, rc=rc, stdout=out, stderr=err, cmd=cmd or self.commands[-1])

    def detect_version(self):
        rc, out, err = self.module.run_command([self.binary, "version"])
        version = parse_version(out)
        if rc != 0 or version is None:
            raise ResticError("could not run '%s version' to learn restic's version" % self.binary,
                              rc=rc, stdout=out, stderr=err)
        self.version = version
        return version

    @property
    def version_string(self):
        return ".".join(str(part) for part in self.version) if self.version else None

    # -- the repository itself -------------------------------------------------

    def probe(self):
        """Return (exists, config). Raises on a wrong password, a lock or anything unknown.

        `cat config --no-lock` reads the config file (decrypting it needs the
        password): it writes nothing to the repository.
        """
        rc, out, err = self.run("--no-lock", "cat", "config")
        if rc == 0:
            try:
                return True, json.loads(out)
            except ValueError:
                return True, {}
        kind = classify_failure(self.version, rc, err)
        if kind == NO_REPOSITORY:
            return False, None
        self.fail("open repository", rc, out, err, kind=kind)
        return None  # not reached

    def init(self):
        rc, out, err = self.run("init")
        if rc != 0:
            self.fail("init", rc, out, err)

    # -- backup ----------------------------------------------------------------

    def _backup_args(self, params):
        args = ["backup", "--json", "--quiet"]
        for pattern in params.get("exclude") or []:
            args += ["--exclude", pattern]
        for path in params.get("exclude_file") or []:
            args += ["--exclude-file", path]
        for tag in params.get("tags") or []:
            args += ["--tag", tag]
        if params.get("host"):
            args += ["--host", params["host"]]
        if params.get("one_file_system"):
            args.append("--one-file-system")
        return args

    def backup(self, params, check_mode):
        paths = params["paths"]
        args = self._backup_args(params)
        native_skip = self.version >= SKIP_IF_UNCHANGED_SINCE
        if (check_mode or not native_skip) and self._has_parent(params):
            # Old restic has no --skip-if-unchanged: a dry run tells whether the
            # snapshot would add anything (and check mode uses the same answer).
            rc, out, err = self.run(*(args + ["--dry-run", "--"] + paths))
            if rc not in (0, RC_INCOMPLETE):
                self.fail("backup --dry-run", rc, out, err)
            summary = summary_of(out) or {}
            would_change = any(summary.get(k, 0) for k in ("files_new", "files_changed", "dirs_new", "dirs_changed")) \
                or bool(summary.get("data_added", 0))
            if check_mode or not would_change:
                return {"changed": would_change, "snapshot_id": None, "summary": summary, "dry_run": True}
        elif check_mode:
            # Nothing to compare with: the backup would write the first snapshot of these paths.
            return {"changed": True, "snapshot_id": None, "summary": {}, "dry_run": False}
        if native_skip:
            args.append("--skip-if-unchanged")
        rc, out, err = self.run(*(args + ["--"] + paths))
        if rc not in (0, RC_INCOMPLETE):
            self.fail("backup", rc, out, err)
        summary = summary_of(out) or {}
        snapshot_id = summary.get("snapshot_id")
        result = {"changed": bool(snapshot_id), "snapshot_id": snapshot_id, "summary": summary, "dry_run": False}
        if rc == RC_INCOMPLETE:
            result["warning"] = "backup is incomplete: some source files could not be read (restic exit code 3)"
        return result

    def _has_parent(self, params):
        """Whether a snapshot restic could use as the parent of this backup may exist.

        restic picks the latest snapshot of the same host with the same paths.
        Listing snapshots that include these paths costs one cheap command and
        spares the dry run (which reads every new file) on a first backup. A
        match that is not the exact parent only means a dry run too many.
        """
        host = params.get("host") or socket.gethostname()
        args = ["--no-lock", "snapshots", "--json", "--host", host]
        for path in params["paths"]:
            args += ["--path", os.path.abspath(path)]
        rc, out, err = self.run(*args)
        if rc != 0:
            self.fail("snapshots", rc, out, err)
        try:
            return bool(json.loads(out))
        except ValueError:
            return True

    # -- snapshots, forget, prune ---------------------------------------------

    def _filter_args(self, params, paths=True):
        args = []
        if params.get("host"):
            args += ["--host", params["host"]]
        for tag in params.get("tags") or []:
            args += ["--tag", tag]
        if paths:
            for path in params.get("paths") or []:
                args += ["--path", os.path.abspath(path)]
        return args

    def snapshots(self, params):
        rc, out, err = self.run("--no-lock", "snapshots", "--json", *self._filter_args(params))
        if rc != 0:
            self.fail("snapshots", rc, out, err)
        try:
            return json.loads(out) or []
        except ValueError:
            raise ResticError("restic snapshots printed no JSON", stdout=out, stderr=err, cmd=self.commands[-1])

    def forget(self, params, check_mode):
        try:
            policy = retention_args(params["retention"])
        except RetentionError as exc:
            raise ResticError(str(exc))
        args = ["forget", "--json"] + policy + self._filter_args(params)
        if params.get("group_by"):
            args += ["--group-by", params["group_by"]]
        if check_mode:
            # A dry run needs no lock: check mode writes nothing, not even a lock file.
            args = ["--no-lock"] + args + ["--dry-run"]
        rc, out, err = self.run(*args)
        if rc != 0:
            self.fail("forget", rc, out, err)
        try:
            groups = json.loads(out) or []
        except ValueError:
            raise ResticError("restic forget printed no JSON", stdout=out, stderr=err, cmd=self.commands[-1])
        removed = [snapshot_brief(s) for g in groups for s in (g.get("remove") or [])]
        kept = [snapshot_brief(s) for g in groups for s in (g.get("keep") or [])]
        pruned = False
        if removed and params.get("prune") and not check_mode:
            rc, out, err = self.run("prune")
            if rc != 0:
                self.fail("prune", rc, out, err)
            pruned = True
        return {"changed": bool(removed), "removed": removed, "kept": kept, "pruned": pruned}

    # -- check -----------------------------------------------------------------

    def check(self, params):
        args = ["check"]
        if params.get("read_data_subset"):
            args += ["--read-data-subset", params["read_data_subset"]]
        json_out = self.version >= CHECK_JSON_SINCE
        if json_out:
            args.append("--json")
        rc, out, err = self.run(*args)
        kind = classify_failure(self.version, rc, err) if rc else None
        if kind in (NO_REPOSITORY, WRONG_PASSWORD, LOCKED):
            self.fail("check", rc, out, err, kind=kind)
        lines = [line for line in (out + "\n" + err).splitlines() if line.strip()]
        errors = [line for line in lines if re.match(r"^(error|Fatal|.*: error)", line, re.I)
                  and not line.startswith("{")]
        errors += [m.get("message", "") for m in json_lines(err) if m.get("message_type") in ("error", "exit_error")]
        summary = summary_of(out) if json_out else None
        num_errors = summary.get("num_errors", 0) if summary else len(errors)
        ok = rc == 0 and (num_errors == 0)
        return {
            "ok": ok,
            "rc": rc,
            "num_errors": num_errors if not ok or summary else 0,
            "errors": errors,
            "read_data_subset": params.get("read_data_subset"),
            "suggest_repair_index": bool(summary and summary.get("suggest_repair_index")),
            "suggest_prune": bool(summary and summary.get("suggest_prune")),
            "output": lines if not json_out else [line for line in lines if not line.startswith("{")],
        }

    # -- restore and verify ----------------------------------------------------

    def restore(self, params, target, check_mode):
        snapshot = params.get("snapshot") or "latest"
        args = ["restore", snapshot, "--target", target] + self._filter_args(params)
        for pattern in params.get("include") or []:
            args += ["--include", pattern]
        if check_mode:
            return {"changed": True, "snapshot": snapshot, "target": target}
        rc, out, err = self.run(*args)
        if rc != 0:
            self.fail("restore", rc, out, err)
        return {"changed": True, "snapshot": snapshot, "target": target}

    def verify(self, params):
        paths = params["paths"]
        tmp = tempfile.mkdtemp(prefix="restic-verify-", dir=params.get("verify_dir") or None)
        try:
            os.chmod(tmp, 0o700)
            self.restore(params, tmp, check_mode=False)
            return compare_trees(paths, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- locks -----------------------------------------------------------------

    def locks(self):
        rc, out, err = self.run("--no-lock", "list", "locks")
        if rc != 0:
            self.fail("list locks", rc, out, err)
        return [line.strip() for line in out.splitlines() if re.match(r"^[0-9a-f]{64}$", line.strip())]

    def unlock_stale(self):
        """`restic unlock` without --remove-all: only locks whose process is gone (same host) or that are old."""
        rc, out, err = self.run("unlock")
        if rc != 0:
            self.fail("unlock", rc, out, err)

    def unlock(self, params, check_mode):
        before = self.locks()
        if check_mode or not before:
            return {"changed": bool(before), "locks_before": before, "locks_after": before}
        args = ["unlock"]
        if params.get("remove_all_locks"):
            args.append("--remove-all")
        rc, out, err = self.run(*args)
        if rc != 0:
            self.fail("unlock", rc, out, err)
        after = self.locks()
        return {"changed": before != after, "locks_before": before, "locks_after": after}


def _digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _inventory(root):
    """{relative path: ('file', sha256) | ('link', target) | ('dir', None)} under root."""
    found = {}
    if not os.path.lexists(root):
        return found
    if not os.path.isdir(root) or os.path.islink(root):
        entries = [("", root)]
    else:
        entries = []
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            for name in dirnames + filenames:
                entries.append((os.path.normpath(os.path.join(rel, name)), os.path.join(dirpath, name)))
    for rel, full in entries:
        mode = os.lstat(full).st_mode
        if stat.S_ISLNK(mode):
            found[rel] = ("link", os.readlink(full))
        elif stat.S_ISDIR(mode):
            found[rel] = ("dir", None)
        elif stat.S_ISREG(mode):
            found[rel] = ("file", _digest(full))
    return found


def compare_trees(paths, restored_root):
    """Compare each source path with its restored copy under restored_root (restic keeps absolute paths)."""
    differ, missing, extra = [], [], []
    files = 0
    for path in paths:
        source = os.path.abspath(path)
        copy = os.path.join(restored_root, source.lstrip("/"))
        want, got = _inventory(source), _inventory(copy)
        for rel in sorted(set(want) | set(got)):
            shown = os.path.normpath(os.path.join(source, rel))
            if rel not in got:
                missing.append(shown)
            elif rel not in want:
                extra.append(shown)
            elif want[rel] != got[rel]:
                differ.append(shown)
            elif want[rel][0] == "file":
                files += 1
    return {
        "ok": not (differ or missing or extra),
        "files_compared": files,
        "differ": differ,
        "missing": missing,
        "extra": extra,
    }
