"""A backup set on disk (config, source tree, repositories) and the program run against it for real."""

import fcntl
import json
import os
import subprocess
import sys
import uuid

import pytest
from restic_it import BINARIES, PASSWORD, S3_KEY_ID, S3_SECRET, write_tree

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PROGRAM = os.path.join(REPO_ROOT, "roles", "backup", "files", "homelab_backup.py")


def parse_metrics(text):
    """{(name, repository): value} of a textfile collector file."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        name, labels = name_labels.split("{", 1)
        repo = [p.split("=", 1)[1].strip('"') for p in labels.rstrip("}").split(",") if p.startswith("repository=")]
        out[(name, repo[0])] = float(value)
    return out


class BackupSet:
    """One backup set with fresh repositories; ``run`` executes the program as the Nomad task would."""

    def __init__(self, version, data_root, src_root, request, backends):
        self.version = version
        self.binary = BINARIES[version]
        self.name = "it%s" % uuid.uuid4().hex[:8]
        self.work = os.path.join(src_root, self.name)
        self.src = os.path.join(self.work, "src", "data")
        os.makedirs(self.src)
        self.fast = os.path.join(data_root, "repos", self.name)
        self.repos = []
        self.env = {"RESTIC_PASSWORD": PASSWORD}
        for backend in backends:
            if backend == "local":
                self.repos.append({"name": "local", "url": os.path.join(self.fast, "local")})
            elif backend == "s3":
                s3 = request.getfixturevalue("s3_server")
                self.s3 = s3
                self.repos.append({
                    "name": "offsite",
                    "url": "s3:http://127.0.0.1:%d/%s/%s" % (s3["port"], s3["bucket"], self.name),
                    "env": {"AWS_ACCESS_KEY_ID": "BACKUP_OFFSITE_AWS_ACCESS_KEY_ID",
                            "AWS_SECRET_ACCESS_KEY": "BACKUP_OFFSITE_AWS_SECRET_ACCESS_KEY"},
                    "plain_env": {"AWS_DEFAULT_REGION": "us-east-1"},
                })
                self.env.update(BACKUP_OFFSITE_AWS_ACCESS_KEY_ID=S3_KEY_ID,
                                BACKUP_OFFSITE_AWS_SECRET_ACCESS_KEY=S3_SECRET)
        self.textfile_dir = os.path.join(self.fast, "textfile")
        self.config = {
            "set": self.name,
            "restic": self.binary,
            "host": "it-host",
            "sources": [{"path": self.src}],
            "excludes": ["*.tmp"],
            "repositories": self.repos,
            "forget_args": ["--keep-last", "1"],
            "prune": True,
            "textfile_dir": self.textfile_dir,
            "state_dir": os.path.join(self.fast, "state"),
            "scratch_dir": os.path.join(self.fast, "scratch"),
            "cache_dir": os.path.join(self.fast, "cache"),
            "drill_sample": 50,
        }
        self.config_path = os.path.join(self.fast, "config.json")
        os.makedirs(self.fast)
        self.write_config()

    def write_config(self, **changes):
        self.config.update(changes)
        with open(self.config_path, "w") as fh:
            json.dump(self.config, fh)

    def restic(self, repo, *args):
        env = dict(self._env(), RESTIC_PASSWORD=PASSWORD, RESTIC_REPOSITORY=repo["url"])
        if "env" in repo:
            env.update(AWS_ACCESS_KEY_ID=S3_KEY_ID, AWS_SECRET_ACCESS_KEY=S3_SECRET, AWS_DEFAULT_REGION="us-east-1")
        return subprocess.run([self.binary, "--cache-dir", self.config["cache_dir"]] + list(args), env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    def init(self):
        for repo in self.repos:
            proc = self.restic(repo, "init")
            assert proc.returncode == 0, proc.stderr

    @staticmethod
    def _env():
        return {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "AWS_", "B2_"))}

    def run(self, command, *extra, env=None):
        full_env = dict(self._env(), **(self.env if env is None else env))
        proc = subprocess.run([sys.executable, PROGRAM, command, "--config", self.config_path] + list(extra),
                              env=full_env, capture_output=True, text=True, timeout=300, check=False)
        for secret in (PASSWORD, S3_SECRET):
            assert secret not in proc.stdout + proc.stderr, "a secret reached the log"
        return proc

    def metrics(self):
        path = os.path.join(self.textfile_dir, "homelab_backup_%s.prom" % self.name)
        with open(path) as fh:
            return parse_metrics(fh.read())

    def objects(self, repo):
        """Names of every object in the repository (to show nothing changed)."""
        if repo["url"].startswith("/"):
            out = set()
            for dirpath, _dirs, files in os.walk(repo["url"]):
                out.update(os.path.join(dirpath, f) for f in files)
            return out
        client = self.s3["client"]
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.s3["bucket"], Prefix=self.name + "/")
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    def corrupt_largest_pack(self, repo):
        """Flip one byte in the middle of the largest pack file (a data pack: the big file's blobs)."""
        if repo["url"].startswith("/"):
            packs = []
            for dirpath, _dirs, files in os.walk(os.path.join(repo["url"], "data")):
                packs += [os.path.join(dirpath, f) for f in files]
            path = max(packs, key=os.path.getsize)
            with open(path, "rb") as fh:
                data = bytearray(fh.read())
            data[len(data) // 2] ^= 0xFF
            os.chmod(path, 0o644)
            with open(path, "wb") as fh:
                fh.write(data)
            return path
        client, bucket = self.s3["client"], self.s3["bucket"]
        objs = client.list_objects_v2(Bucket=bucket, Prefix="%s/data/" % self.name)["Contents"]
        key = max(objs, key=lambda o: o["Size"])["Key"]
        data = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        data[len(data) // 2] ^= 0xFF
        client.put_object(Bucket=bucket, Key=key, Body=bytes(data))
        return key


def hold_lock(backup_set):
    """Take the set's lock as another run would; returns the open file (close it to release)."""
    os.makedirs(backup_set.config["state_dir"], exist_ok=True)
    fh = open(os.path.join(backup_set.config["state_dir"], backup_set.name + ".lock"), "a+")  # noqa: SIM115
    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fh


@pytest.fixture
def program():
    return PROGRAM


@pytest.fixture
def backup_set(data_root, src_root, request):
    """A factory: backup_set(version, backends) -> BackupSet with a source tree written."""

    def make(version, backends):
        bset = BackupSet(version, data_root, src_root, request, backends)
        write_tree(bset.src, seed=1)
        # Incompressible, so that the largest pack file is a data pack holding this file's blob.
        with open(os.path.join(bset.src, "nested", "photo.raw"), "wb") as fh:
            fh.write(os.urandom(384 * 1024))
        with open(os.path.join(bset.src, "scratch.tmp"), "w") as fh:
            fh.write("excluded\n")
        return bset

    return make
