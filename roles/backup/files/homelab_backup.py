#!/usr/bin/env python
# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""homelab-backup: one backup set's backup, retention and restore drill, with restic.

Run by the backup role's Nomad jobs (``backup-<set>``, ``backup-<set>-retention``,
``restore-drill``) as a ``raw_exec`` task; also runnable by hand:

    homelab-backup backup   --config /etc/homelab/backup/<set>.json
    homelab-backup forget   --config ... [--lock-wait 3600]
    homelab-backup drill    --config ... [--lock-wait 3600]
    homelab-backup validate --config ...

The configuration file (JSON, written by the role) holds no secret. The
repository password and credentials come from the environment, where the
job's Vault template puts them (variables named in the config per repository).

Exit codes (also in docs/backup.md):
  0 success
  1 unexpected internal error
  2 bad configuration or input (nothing was changed)
  3 restic failed for at least one repository
  4 a backup finished but restic could not read some source files (exit 3 of restic)
  5 the restore drill failed (restore error or checksum mismatch)
  6 another run of this backup set holds the lock
  7 the source could not be made consistent (ZFS snapshot failed)

Every run writes the set's metrics for node-exporter's textfile collector to
``<textfile_dir>/homelab_backup_<set>.prom`` atomically (temp file + rename).
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import fnmatch
import hashlib
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_RESTIC = 3
EXIT_INCOMPLETE = 4
EXIT_DRILL = 5
EXIT_LOCKED = 6
EXIT_SOURCE = 7

LOG = logging.getLogger("homelab-backup")

# restic repository locations this program knows the credentials of.
SCHEMES = ("b2:", "s3:", "rest:", "sftp:")
# Per scheme: credential -> the restic environment variable it becomes.
CREDENTIALS = {
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
    "b2": ("B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"),
    "rest": ("RESTIC_REST_USERNAME", "RESTIC_REST_PASSWORD"),
    "sftp": (),
    "local": (),
}
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
_GLOB = re.compile(r"[*?\[\\]")  # restic include patterns are globs; sample files must not contain these
_URL_PASSWORD = re.compile(r"^(rest:https?://[^:/@]+:)([^@]+)(@)")


class Failure(Exception):
    """A failure with a meaningful exit code and a one-line message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def mask(url):
    """A repository location with a password in its URL masked."""
    return _URL_PASSWORD.sub(r"\1********\3", url)


def scheme(url):
    if url.startswith("/"):
        return "local"
    for prefix in SCHEMES:
        if url.startswith(prefix):
            return prefix[:-1]
    raise Failure(EXIT_CONFIG, "repository URL %r has an unknown scheme; known: an absolute local path, %s"
                  % (mask(url), ", ".join(SCHEMES)))


# --------------------------------------------------------------------------- configuration


def load_config(path):
    try:
        with open(path, encoding="utf-8") as fh:
            cfg = json.load(fh)
    except OSError as exc:
        raise Failure(EXIT_CONFIG, "cannot read config %s: %s" % (path, exc.strerror))
    except ValueError as exc:
        raise Failure(EXIT_CONFIG, "config %s is not valid JSON: %s" % (path, exc))
    return validate(cfg)


def validate(cfg):
    """Check everything before anything changes; raise Failure(EXIT_CONFIG) naming the field."""
    if not isinstance(cfg, dict):
        raise Failure(EXIT_CONFIG, "config must be a JSON object")
    name = cfg.get("set")
    if not isinstance(name, str) or not _NAME.match(name):
        raise Failure(EXIT_CONFIG, "set: %r is not a valid backup set name (lower-case letters, digits, - and _)"
                      % (name,))
    sources = cfg.get("sources")
    if not isinstance(sources, list) or not sources:
        raise Failure(EXIT_CONFIG, "sources: at least one source path is required")
    for i, src in enumerate(sources):
        if not isinstance(src, dict) or not isinstance(src.get("path"), str) or not src["path"].startswith("/"):
            raise Failure(EXIT_CONFIG, "sources[%d].path must be an absolute path, got %r" % (i, src))
        if src.get("dataset") is not None and (not isinstance(src["dataset"], str) or "@" in src["dataset"]
                                               or not src["dataset"]):
            raise Failure(EXIT_CONFIG, "sources[%d].dataset must be a ZFS dataset name, got %r"
                          % (i, src["dataset"]))
    repos = cfg.get("repositories")
    if not isinstance(repos, list) or not repos:
        raise Failure(EXIT_CONFIG, "repositories: at least one repository is required")
    seen = set()
    for i, repo in enumerate(repos):
        if not isinstance(repo, dict) or not isinstance(repo.get("url"), str) or not repo["url"]:
            raise Failure(EXIT_CONFIG, "repositories[%d].url is required" % i)
        rname = repo.get("name")
        if not isinstance(rname, str) or not _NAME.match(rname):
            raise Failure(EXIT_CONFIG, "repositories[%d].name %r is not valid" % (i, rname))
        if rname in seen:
            raise Failure(EXIT_CONFIG, "repositories[%d].name %r is used twice" % (i, rname))
        seen.add(rname)
        kind = scheme(repo["url"])
        for key in repo.get("env") or {}:
            if key not in CREDENTIALS[kind]:
                raise Failure(EXIT_CONFIG, "repositories[%d].env: %s is not a credential of a %s repository "
                              "(known: %s)" % (i, key, kind, ", ".join(CREDENTIALS[kind]) or "none"))
        if not isinstance(repo.get("options") or {}, dict):
            raise Failure(EXIT_CONFIG, "repositories[%d].options must be a mapping" % i)
    forget = cfg.get("forget_args")
    if forget is not None:
        if not isinstance(forget, list) or not forget or not all(isinstance(a, str) for a in forget):
            raise Failure(EXIT_CONFIG, "forget_args: the retention policy keeps nothing (an empty policy would "
                          "remove every snapshot); give at least one keep rule")
        if not any(a.startswith("--keep-") for a in forget):
            raise Failure(EXIT_CONFIG, "forget_args: no --keep-* rule in %r" % (forget,))
    for key in ("textfile_dir", "state_dir", "scratch_dir"):
        if not isinstance(cfg.get(key), str) or not cfg[key].startswith("/"):
            raise Failure(EXIT_CONFIG, "%s must be an absolute path" % key)
    sample = cfg.get("drill_sample", 20)
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
        raise Failure(EXIT_CONFIG, "drill_sample must be a whole number of at least 1, got %r" % (sample,))
    cfg.setdefault("restic", "restic")
    cfg.setdefault("zfs", "zfs")
    cfg.setdefault("excludes", [])
    cfg.setdefault("host", os.uname().nodename)
    cfg.setdefault("snapshot_name", "homelab-backup-%s" % name)
    cfg.setdefault("drill_sample", 20)
    cfg.setdefault("prune", True)
    cfg.setdefault("cache_dir", None)
    return cfg


def check_sources(cfg):
    """Every source path must exist: a backup of nothing is not a backup."""
    for i, src in enumerate(cfg["sources"]):
        if not os.path.isdir(src["path"]) and not os.path.isfile(src["path"]):
            raise Failure(EXIT_CONFIG, "sources[%d].path %s does not exist" % (i, src["path"]))


def repo_env(cfg, repo, environ=None):
    """restic's environment for ``repo``: the password and credentials from the variables the config names."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items() if not k.startswith(("RESTIC_", "AWS_", "B2_"))}
    env["RESTIC_REPOSITORY"] = repo["url"]
    pw_var = repo.get("password_env") or cfg.get("password_env") or "RESTIC_PASSWORD"
    if environ.get(pw_var):
        env["RESTIC_PASSWORD"] = environ[pw_var]
    elif repo.get("password_file") or cfg.get("password_file"):
        env["RESTIC_PASSWORD_FILE"] = repo.get("password_file") or cfg["password_file"]
    else:
        raise Failure(EXIT_CONFIG, "repository %s: no password: the environment has no %s (rendered from Vault)"
                      % (repo["name"], pw_var))
    for key, var in sorted((repo.get("env") or {}).items()):
        if not environ.get(var):
            raise Failure(EXIT_CONFIG, "repository %s: %s: the environment has no %s (rendered from Vault)"
                          % (repo["name"], key, var))
        env[key] = environ[var]
    for key, value in sorted((repo.get("plain_env") or {}).items()):
        env[key] = str(value)
    return env


# --------------------------------------------------------------------------- lock, state, metrics


class Lock:
    """An flock on <state_dir>/<set>.lock: one run of a set at a time (backup, retention and drill alike)."""

    def __init__(self, cfg, wait):
        os.makedirs(cfg["state_dir"], mode=0o700, exist_ok=True)
        self.path = os.path.join(cfg["state_dir"], "%s.lock" % cfg["set"])
        self.wait = wait
        self.fh = None

    def __enter__(self):
        self.fh = open(self.path, "a+")  # noqa: SIM115 - closed in __exit__
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    holder = self._holder()
                    self.fh.close()
                    raise Failure(EXIT_LOCKED, "another run holds the lock %s%s; not starting"
                                  % (self.path, holder))
                time.sleep(1)
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write("%d %s\n" % (os.getpid(), " ".join(sys.argv[1:2])))
        self.fh.flush()
        return self

    def _holder(self):
        try:
            self.fh.seek(0)
            text = self.fh.read().strip()
            return " (held by pid %s)" % text if text else ""
        except OSError:
            return ""

    def __exit__(self, *exc):
        self.fh.close()
        return False


def load_state(cfg):
    path = os.path.join(cfg["state_dir"], "%s.json" % cfg["set"])
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def save_state(cfg, state):
    path = os.path.join(cfg["state_dir"], "%s.json" % cfg["set"])
    atomic_write(path, json.dumps(state, indent=1, sort_keys=True) + "\n", 0o600)


def atomic_write(path, text, mode=0o644):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# metric name -> (state key, help)
METRICS = (
    ("homelab_backup_last_success_timestamp_seconds", "backup", "last_success",
     "Time of the last successful backup (backup age = time() - this)."),
    ("homelab_backup_last_run_timestamp_seconds", "backup", "last_run", "Time the last backup ended."),
    ("homelab_backup_last_run_success", "backup", "success", "1 if the last backup succeeded, else 0."),
    ("homelab_backup_size_bytes", "backup", "size_bytes", "Bytes of source data in the last successful backup."),
    ("homelab_backup_added_bytes", "backup", "added_bytes",
     "Bytes the last successful backup added to the repository."),
    ("homelab_backup_files", "backup", "files", "Files in the last successful backup."),
    ("homelab_backup_duration_seconds", "backup", "duration", "Duration of the last backup."),
    ("homelab_backup_retention_last_success_timestamp_seconds", "forget", "last_success",
     "Time of the last successful retention run (forget + prune)."),
    ("homelab_backup_retention_last_run_success", "forget", "success",
     "1 if the last retention run succeeded, else 0."),
    ("homelab_backup_snapshots", "forget", "snapshots", "Snapshots of this set kept after the last retention run."),
    ("homelab_restore_drill_success", "drill", "success",
     "1 if the last restore drill restored its sample and every checksum matched, else 0."),
    ("homelab_restore_drill_last_run_timestamp_seconds", "drill", "last_run", "Time the last restore drill ended."),
    ("homelab_restore_drill_last_success_timestamp_seconds", "drill", "last_success",
     "Time of the last restore drill that passed."),
    ("homelab_restore_drill_files_verified", "drill", "files", "Files the last restore drill verified."),
)


def render_metrics(cfg, state):
    lines = []
    for metric, kind, key, helptext in METRICS:
        samples = []
        for repo in cfg["repositories"]:
            value = state.get(repo["name"], {}).get(kind, {}).get(key)
            if value is None:
                continue
            samples.append('%s{set="%s",repository="%s"} %s' % (metric, cfg["set"], repo["name"], _num(value)))
        if samples:
            lines.append("# HELP %s %s" % (metric, helptext))
            lines.append("# TYPE %s gauge" % metric)
            lines.extend(samples)
    return "\n".join(lines) + "\n"


def _num(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(round(value, 3))
    return str(value)


def write_metrics(cfg, state):
    path = os.path.join(cfg["textfile_dir"], "homelab_backup_%s.prom" % cfg["set"])
    atomic_write(path, render_metrics(cfg, state))
    LOG.info("metrics written to %s", path)


# --------------------------------------------------------------------------- restic


def restic(cfg, repo, args, env, capture=True, timeout=None):
    cmd = [cfg["restic"]]
    if cfg.get("cache_dir"):
        cmd += ["--cache-dir", cfg["cache_dir"]]
    for key, value in sorted((repo.get("options") or {}).items()):
        cmd += ["-o", "%s=%s" % (key, _option(value))]
    cmd += args
    LOG.debug("run: %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, env=env, capture_output=capture, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise Failure(EXIT_CONFIG, "restic executable %s not found" % cfg["restic"])
    return proc


def _option(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def restic_error(proc):
    lines = [line for line in (proc.stderr or "").splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("Fatal:")]
    return (fatal or lines or ["exit %d, no message" % proc.returncode])[-1][:500]


def json_lines(text):
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def latest_snapshot(cfg, repo, env):
    proc = restic(cfg, repo, ["snapshots", "--json", "--no-lock", "--host", cfg["host"], "--tag", tag(cfg)], env)
    if proc.returncode != 0:
        raise Failure(EXIT_RESTIC, "repository %s: listing snapshots failed: %s" % (repo["name"], restic_error(proc)))
    snaps = json.loads(proc.stdout or "[]") or []
    if not snaps:
        return None, 0
    snaps.sort(key=lambda s: s["time"])
    return snaps[-1], len(snaps)


def tag(cfg):
    return "homelab-backup-%s" % cfg["set"]


# --------------------------------------------------------------------------- ZFS snapshots


class Sources:
    """The set's sources made consistent: a ZFS dataset is snapshotted and read from .zfs/snapshot."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.taken = []
        self.paths = []

    def zfs(self, *args, check=True):
        proc = subprocess.run([self.cfg["zfs"]] + list(args), capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise Failure(EXIT_SOURCE, "zfs %s failed: %s" % (" ".join(args), (proc.stderr or proc.stdout).strip()))
        return proc

    def __enter__(self):
        name = self.cfg["snapshot_name"]
        try:
            for src in self.cfg["sources"]:
                dataset = src.get("dataset")
                if not dataset:
                    self.paths.append(src["path"])
                    continue
                mountpoint = self.zfs("get", "-H", "-o", "value", "mountpoint", dataset).stdout.strip()
                if not mountpoint.startswith("/"):
                    raise Failure(EXIT_SOURCE, "dataset %s is not mounted (mountpoint %r)" % (dataset, mountpoint))
                rel = os.path.relpath(src["path"], mountpoint)
                if rel.startswith(".."):
                    raise Failure(EXIT_SOURCE, "source %s is not inside dataset %s (mounted at %s)"
                                  % (src["path"], dataset, mountpoint))
                snap = "%s@%s" % (dataset, name)
                # A snapshot of this name is left over from a run that was killed: we hold the set's lock.
                if self.zfs("list", "-H", "-t", "snapshot", "-o", "name", snap, check=False).returncode == 0:
                    LOG.warning("removing the stale snapshot %s of an earlier run", snap)
                    self.zfs("destroy", snap)
                self.zfs("snapshot", snap)
                self.taken.append(snap)
                LOG.info("snapshot %s taken", snap)
                path = os.path.normpath(os.path.join(mountpoint, ".zfs", "snapshot", name, rel))
                if not os.path.exists(path):
                    raise Failure(EXIT_SOURCE, "snapshot path %s does not exist" % path)
                self.paths.append(path)
        except BaseException:
            self.release()
            raise
        return self

    def release(self):
        for snap in reversed(self.taken):
            proc = self.zfs("destroy", snap, check=False)
            if proc.returncode == 0:
                LOG.info("snapshot %s released", snap)
            else:
                LOG.error("could not release snapshot %s: %s", snap, proc.stderr.strip())
        self.taken = []

    def __exit__(self, *exc):
        self.release()
        return False


def sample_files(paths, excludes, count, rng=None):
    """``count`` regular files under ``paths`` chosen uniformly (reservoir sampling), with their SHA-256."""
    rng = rng or random.SystemRandom()
    chosen = []
    seen = 0
    for root in paths:
        walker = [(os.path.dirname(root), [], [os.path.basename(root)])] if os.path.isfile(root) else os.walk(root)
        for dirpath, _dirs, files in walker:
            for name in files:
                full = os.path.join(dirpath, name)
                if _GLOB.search(full) or not os.path.isfile(full) or os.path.islink(full):
                    continue
                if _excluded(full, excludes):
                    continue
                seen += 1
                if len(chosen) < count:
                    chosen.append(full)
                else:
                    j = rng.randrange(seen)
                    if j < count:
                        chosen[j] = full
    out = []
    for path in sorted(chosen):
        try:
            out.append({"path": path, "sha256": sha256(path), "size": os.path.getsize(path)})
        except OSError as exc:
            LOG.warning("sample: cannot read %s: %s", path, exc.strerror)
    return out


def _excluded(path, excludes):
    """A close approximation of restic's --exclude (the sample must not pick a file restic leaves out)."""
    base = os.path.basename(path)
    for pattern in excludes:
        below = path.startswith(pattern.rstrip("/") + "/")
        if below or fnmatch.fnmatch(base, pattern) or fnmatch.fnmatch(path, pattern):
            return True
    return False


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- commands


def repos_for(cfg, only):
    repos = [r for r in cfg["repositories"] if not only or r["name"] in only]
    unknown = sorted(set(only or []) - {r["name"] for r in cfg["repositories"]})
    if unknown:
        raise Failure(EXIT_CONFIG, "--repository: unknown repository %s" % ", ".join(unknown))
    return repos


def cmd_backup(cfg, args):
    check_sources(cfg)
    repos = repos_for(cfg, args.repository)
    envs = {r["name"]: repo_env(cfg, r) for r in repos}
    with Lock(cfg, args.lock_wait):
        state = load_state(cfg)
        worst = EXIT_OK
        try:
            sources = Sources(cfg).__enter__()
        except Failure:
            # No consistent source, no backup: say so in the metrics too (the age alone would take a day).
            for repo in repos:
                entry = state.setdefault(repo["name"], {}).setdefault("backup", {})
                entry.update(last_run=int(time.time()), success=0)
            save_state(cfg, state)
            write_metrics(cfg, state)
            raise
        try:
            LOG.info("backup %s: %s", cfg["set"], " ".join(sources.paths))
            sample = sample_files(sources.paths, cfg["excludes"], cfg["drill_sample"])
            for repo in repos:
                started = time.time()
                entry = state.setdefault(repo["name"], {}).setdefault("backup", {})
                argv = ["backup", "--json", "--host", cfg["host"], "--tag", tag(cfg)]
                for pattern in cfg["excludes"]:
                    argv += ["--exclude", pattern]
                if cfg.get("one_file_system"):
                    argv.append("--one-file-system")
                proc = restic(cfg, repo, argv + sources.paths, envs[repo["name"]])
                summary = next((m for m in json_lines(proc.stdout) if m.get("message_type") == "summary"), None)
                entry["last_run"] = int(time.time())
                entry["duration"] = round(time.time() - started, 3)
                if proc.returncode in (0, 3) and summary and summary.get("snapshot_id"):
                    entry.update(size_bytes=summary.get("total_bytes_processed", 0),
                                 added_bytes=summary.get("data_added", 0),
                                 files=summary.get("total_files_processed", 0))
                    state[repo["name"]]["manifest"] = {"snapshot_id": summary["snapshot_id"], "files": sample}
                    LOG.info("repository %s (%s): snapshot %s, %d files, %d bytes processed, %d bytes added, %.1f s",
                             repo["name"], mask(repo["url"]), summary["snapshot_id"][:8],
                             entry["files"], entry["size_bytes"], entry["added_bytes"], entry["duration"])
                    if proc.returncode == 0:
                        entry.update(success=1, last_success=entry["last_run"])
                    else:
                        entry["success"] = 0
                        worst = max(worst, EXIT_INCOMPLETE)
                        LOG.error("repository %s: snapshot %s is incomplete, restic could not read some files: %s",
                                  repo["name"], summary["snapshot_id"][:8], restic_error(proc))
                else:
                    entry["success"] = 0
                    worst = EXIT_RESTIC
                    LOG.error("repository %s (%s): backup failed: %s", repo["name"], mask(repo["url"]),
                              restic_error(proc))
        finally:
            sources.release()
        save_state(cfg, state)
        write_metrics(cfg, state)
    if worst == EXIT_RESTIC:
        raise Failure(EXIT_RESTIC, "backup %s failed for at least one repository" % cfg["set"])
    if worst == EXIT_INCOMPLETE:
        raise Failure(EXIT_INCOMPLETE, "backup %s is incomplete: some files could not be read" % cfg["set"])
    LOG.info("backup %s: done", cfg["set"])
    return EXIT_OK


def cmd_forget(cfg, args):
    if cfg.get("forget_args") is None:
        raise Failure(EXIT_CONFIG, "forget_args: no retention policy in the config")
    repos = repos_for(cfg, args.repository)
    envs = {r["name"]: repo_env(cfg, r) for r in repos}
    failed = []
    with Lock(cfg, args.lock_wait):
        state = load_state(cfg)
        for repo in repos:
            entry = state.setdefault(repo["name"], {}).setdefault("forget", {})
            env = envs[repo["name"]]
            restic(cfg, repo, ["unlock"], env)  # only stale locks: a killed run's lock would block forget
            argv = ["forget", "--json", "--host", cfg["host"], "--tag", tag(cfg), "--group-by", "host,tags"]
            argv += cfg["forget_args"]
            if cfg.get("prune"):
                argv.append("--prune")
            proc = restic(cfg, repo, argv, env)
            entry["last_run"] = int(time.time())
            if proc.returncode != 0:
                entry["success"] = 0
                failed.append(repo["name"])
                LOG.error("repository %s: retention failed: %s", repo["name"], restic_error(proc))
                continue
            groups = json.loads(_first_json(proc.stdout) or "[]") or []
            kept = sum(len(g.get("keep") or []) for g in groups)
            removed = sum(len(g.get("remove") or []) for g in groups)
            entry.update(success=1, last_success=entry["last_run"], snapshots=kept)
            LOG.info("repository %s: retention kept %d and removed %d snapshot(s)%s", repo["name"], kept, removed,
                     ", pruned" if cfg.get("prune") and removed else "")
        save_state(cfg, state)
        write_metrics(cfg, state)
    if failed:
        raise Failure(EXIT_RESTIC, "retention failed for %s" % ", ".join(failed))
    return EXIT_OK


def _first_json(text):
    for line in (text or "").splitlines():
        if line.startswith("["):
            return line
    return None


def drill_repo(cfg, repo, env, state):
    """Restore the recorded sample of the latest snapshot into scratch and compare checksums; raise on failure."""
    latest, _count = latest_snapshot(cfg, repo, env)
    if latest is None:
        raise Failure(EXIT_DRILL, "no snapshot of set %s in repository %s" % (cfg["set"], repo["name"]))
    manifest = state.get(repo["name"], {}).get("manifest") or {}
    if not manifest.get("snapshot_id") or not latest["id"].startswith(manifest["snapshot_id"]):
        raise Failure(EXIT_DRILL, "no checksums recorded for the latest snapshot %s (recorded: %s); "
                      "was it written by another program?" % (latest["short_id"], manifest.get("snapshot_id")))
    files = manifest.get("files") or []
    if not files:
        raise Failure(EXIT_DRILL, "the latest snapshot %s has no files to verify" % latest["short_id"])
    os.makedirs(cfg["scratch_dir"], mode=0o700, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="drill-%s-%s-" % (cfg["set"], repo["name"]), dir=cfg["scratch_dir"])
    try:
        argv = ["restore", latest["id"], "--target", scratch]
        for item in files:
            argv += ["--include", item["path"]]
        proc = restic(cfg, repo, argv, env)
        problems = []
        if proc.returncode != 0:
            problems.append("restic restore failed: %s" % restic_error(proc))
        verified = 0
        for item in files:
            restored = os.path.join(scratch, item["path"].lstrip("/"))
            if not os.path.isfile(restored):
                problems.append("%s was not restored" % item["path"])
                continue
            got = sha256(restored)
            if got != item["sha256"]:
                problems.append("%s: checksum %s, expected %s" % (item["path"], got[:12], item["sha256"][:12]))
                continue
            verified += 1
        return latest, verified, len(files), problems
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def cmd_drill(cfg, args):
    repos = repos_for(cfg, args.repository)
    envs = {r["name"]: repo_env(cfg, r) for r in repos}
    failed = []
    with Lock(cfg, args.lock_wait):
        state = load_state(cfg)
        for repo in repos:
            entry = state.setdefault(repo["name"], {}).setdefault("drill", {})
            try:
                latest, verified, total, problems = drill_repo(cfg, repo, envs[repo["name"]], state)
            except Failure as exc:
                problems, verified, total, latest = [str(exc)], 0, 0, None
            entry.update(last_run=int(time.time()), files=verified)
            if problems:
                entry["success"] = 0
                failed.append(repo["name"])
                for problem in problems[:20]:
                    LOG.error("restore drill %s, repository %s: %s", cfg["set"], repo["name"], problem)
                LOG.error("restore drill %s, repository %s: FAILED (%d of %d files verified)", cfg["set"],
                          repo["name"], verified, total)
            else:
                entry.update(success=1, last_success=entry["last_run"])
                LOG.info("restore drill %s, repository %s: snapshot %s, %d files restored, every checksum matches",
                         cfg["set"], repo["name"], latest["short_id"], verified)
        save_state(cfg, state)
        write_metrics(cfg, state)
    if failed:
        raise Failure(EXIT_DRILL, "restore drill of set %s failed for %s" % (cfg["set"], ", ".join(failed)))
    return EXIT_OK


def cmd_validate(cfg, args):
    """The config and the sources; the secrets are only in the job's environment, so they are not checked."""
    check_sources(cfg)
    repos_for(cfg, args.repository)
    LOG.info("config of set %s is valid", cfg["set"])
    return EXIT_OK


COMMANDS = {"backup": cmd_backup, "forget": cmd_forget, "drill": cmd_drill, "validate": cmd_validate}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="homelab-backup", description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--config", required=True, help="the backup set's JSON config")
    parser.add_argument("--repository", action="append", help="only this repository (repeatable)")
    parser.add_argument("--lock-wait", type=int, default=0, help="seconds to wait for another run's lock")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z")
    try:
        cfg = load_config(args.config)
        return COMMANDS[args.command](cfg, args)
    except Failure as exc:
        LOG.error("%s (exit %d)", exc, exc.code)
        return exc.code
    except Exception:  # noqa: BLE001 - an unexpected error still ends with a clear exit code
        LOG.exception("unexpected error")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
