"""HTTP requests per run: selfhost.homelab.vault_kv vs community.hashi_vault.vault_kv2_write.

Runs each module once per case with ansible-playbook against the Vault
simulator (dev mode, loopback, free port) and counts the requests in the
simulator's log, plus whether a new KV v2 version was created.
Not a test: prints a table.  Usage: python benchmarks/vault/requests_per_run.py [--json]
(--json prints the rows as JSON for benchmarks/run.py instead of the table.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.simulators.vault import start_dev  # noqa: E402

SECRET = {"user": "admin", "password": "pw-1"}
CASES = [
    ("create a new secret", None, SECRET),
    ("unchanged secret", SECRET, SECRET),
    ("change one field", SECRET, {"user": "admin", "password": "pw-2"}),
]
TOOLS = [
    ("vault_kv (engine_version: 2)", "selfhost.homelab.vault_kv", {"engine_version": "2"}),
    ("vault_kv (engine detected)", "selfhost.homelab.vault_kv", {}),
    ("hashi_vault.vault_kv2_write", "community.hashi_vault.vault_kv2_write", {}),
    ("hashi_vault.vault_kv2_write read_before_write", "community.hashi_vault.vault_kv2_write",
     {"read_before_write": True}),
]


def task_for(module, path, data, extra, sim):
    if module == "selfhost.homelab.vault_kv":
        args = {"url": sim.address, "token": "root", "mount": "kv", "path": path, "data": data, **extra}
    else:
        args = {"url": sim.address, "token": "root", "auth_method": "token", "engine_mount_point": "kv",
                "path": path, "data": data, **extra}
    return {"name": "run", module: args}


def run(task, workdir):
    book = Path(workdir) / ("b-%s.yml" % uuid.uuid4().hex[:6])
    book.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c",
                           "local", str(book)], capture_output=True, text=True, env=env, cwd=str(REPO),
                          timeout=120, check=False)
    doc = json.loads(proc.stdout[proc.stdout.index("{"):])
    result = doc["plays"][0]["tasks"][0]["hosts"]["localhost"]
    if result.get("failed"):
        raise SystemExit("run failed: %s" % result.get("msg"))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    as_json = parser.parse_args().json
    sim = start_dev(root_token="root")
    hdr = {"X-Vault-Token": "root"}
    requests.post(sim.address + "/v1/sys/mounts/kv", json={"type": "kv-v2"}, headers=hdr, timeout=5)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        try:
            for case, seed, data in CASES:
                for label, module, extra in TOOLS:
                    path = "bench-" + uuid.uuid4().hex[:8]
                    if seed is not None:
                        requests.post(sim.address + "/v1/kv/data/" + path, json={"data": seed}, headers=hdr,
                                      timeout=5).raise_for_status()
                    sim.reset_log()
                    result = run(task_for(module, path, data, extra, sim), workdir)
                    log = list(sim.requests)
                    meta = requests.get(sim.address + "/v1/kv/metadata/" + path, headers=hdr, timeout=5).json()
                    versions = meta["data"]["current_version"]
                    rows.append((case, label, sum(r["method"] == "GET" for r in log),
                                 sum(r["method"] in ("POST", "PUT", "PATCH", "DELETE") for r in log), len(log),
                                 versions - (1 if seed is not None else 0), result.get("changed")))
        finally:
            sim.stop()
    header = ("case", "module", "reads", "writes", "total", "new versions", "changed")
    if as_json:
        print(json.dumps({"rows": [dict(zip(header, row, strict=True)) for row in rows]}))
        return
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join("%-*s" % (w, h) for w, h in zip(widths, header, strict=True))
    print(line)
    print("-" * len(line))
    last = None
    for row in rows:
        if last is not None and row[0] != last:
            print()
        last = row[0]
        print("  ".join("%-*s" % (w, str(v)) for w, v in zip(widths, row, strict=True)))
    print("\nmerge (patch one field, keep the others): vault_kv merge=true; vault_kv2_write has no merge option.")


if __name__ == "__main__":
    main()
