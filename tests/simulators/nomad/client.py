"""The Nomad simulator's client: places allocations on itself and runs them for real.

With a :class:`Runner` attached (``nomad agent`` with ``client { enabled = true }``
and ``plugin "raw_exec" { config { enabled = true } }``), every task whose driver
is ``raw_exec`` runs as a real process:

- an allocation directory ``DATA_DIR/alloc/ALLOC_ID/`` with ``alloc/``, and per
  task ``TASK/local``, ``TASK/secrets``, ``TASK/tmp``; logs in
  ``alloc/logs/TASK.stdout.0`` / ``.stderr.0`` as Nomad writes them;
- the group's ports on 127.0.0.1 (dynamic ones from free ports), in the task's
  ``NOMAD_PORT_*``/``NOMAD_ADDR_*``/``NOMAD_IP_*`` and in ``AllocatedResources``;
- workload identities signed with the agent's RSA key (``/.well-known/jwks.json``);
  with a ``vault`` block, a Vault JWT login with the ``vault_default`` identity at
  ``auth/<jwt_auth_backend_path>/login`` (role: the task's ``vault.role``);
- ``template`` blocks rendered (see template.py) with that Vault token; a failed
  Vault read kills the task with ``Template failed: vault.read(PATH): ...`` in
  its events, as Nomad's template hook does;
- group and task ``service`` blocks registered in the Consul agent from the
  ``consul`` block (real HTTP API), deregistered when the allocation stops; the
  allocation is healthy once its tasks run and its Consul checks pass.

Tasks of other drivers keep the simulator's settle knob (see README).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from . import template as tmpl

SEC = 10**9


@dataclass
class ClientConfig:
    data_dir: str
    vault_addr: str = ""
    vault_jwt_path: str = "jwt-nomad"
    consul_addr: str = ""
    consul_token: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    drivers: tuple[str, ...] = ("raw_exec",)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http(method: str, url: str, body: Any = None, headers: dict | None = None, timeout: float = 5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def _event(kind: str, message: str, fails: bool = False, exit_code: int = 0, **extra: str) -> dict:
    from .server import _event as server_event

    ev = server_event(kind, message, fails_task=fails)
    ev["ExitCode"] = exit_code
    ev.update(extra)
    return ev


class Runner:
    """Runs allocations of ``sim`` (a NomadSim) on this machine."""

    def __init__(self, sim: Any, config: ClientConfig):
        self.sim = sim
        self.config = config
        self.procs: dict[tuple[str, str], subprocess.Popen] = {}
        self.containers: dict[tuple[str, str], str] = {}
        self.services: dict[str, list[str]] = {}
        self.stopping: set[str] = set()
        os.makedirs(os.path.join(config.data_dir, "alloc"), exist_ok=True)

    def handles(self, job: dict) -> bool:
        drivers = {t.get("Driver") for g in job.get("TaskGroups") or [] for t in g.get("Tasks") or []}
        return bool(drivers) and drivers <= set(self.config.drivers)

    def node_value(self, target: str) -> str | None:
        """The value of a constraint target on this node (None: not set)."""
        import re

        match = re.fullmatch(r"\$\{(.+)\}", target or "")
        if not match:
            return target
        name = match.group(1)
        if name.startswith("meta."):
            return self.config.meta.get(name[5:])
        known = {"node.datacenter": self.sim.datacenter, "node.unique.name": self.sim.node_name,
                 "node.unique.id": self.sim.node_id, "node.region": self.sim.region, "node.class": "",
                 "node.pool": "default", "attr.kernel.name": "linux", "attr.cpu.arch": "amd64",
                 "attr.os.name": "debian", "attr.driver.raw_exec": "1" if "raw_exec" in self.config.drivers else None,
                 "attr.driver.docker": "1" if "docker" in self.config.drivers else None}
        return known.get(name, "")

    def unmet_constraints(self, job: dict, group: dict) -> str:
        """The first constraint of the job or group (or its tasks) this node does not meet, as Nomad names it."""
        import re

        constraints = (job.get("Constraints") or []) + (group.get("Constraints") or [])
        for task in group.get("Tasks") or []:
            constraints += task.get("Constraints") or []
        for con in constraints:
            op = con.get("Operand") or "="
            left, right = self.node_value(con.get("LTarget", "")), con.get("RTarget", "")
            if op in ("=", "==", "is"):
                ok = left is not None and left == right
            elif op in ("!=", "not"):
                ok = left != right
            elif op == "regexp":
                ok = left is not None and re.search(right, left) is not None
            elif op == "is_set":
                ok = left not in (None, "")
            elif op == "is_not_set":
                ok = left in (None, "")
            elif op in ("set_contains", "set_contains_all"):
                have = {v.strip() for v in (left or "").split(",")}
                ok = all(v.strip() in have for v in right.split(","))
            elif op == "set_contains_any":
                have = {v.strip() for v in (left or "").split(",")}
                ok = any(v.strip() in have for v in right.split(","))
            else:  # distinct_hosts, distinct_property, version, semver, lexical order: not evaluated
                ok = True
            if not ok:
                return "%s %s %s" % (con.get("LTarget", ""), op, right)
        return ""

    # ---- lifecycle, called by NomadSim under its lock -------------------------------
    def start(self, alloc: dict, job: dict) -> None:
        alloc["_outcome"] = "real"
        threading.Thread(target=self._run, args=(alloc["ID"], job), daemon=True).start()

    def stop(self, alloc_id: str) -> None:
        self.stopping.add(alloc_id)
        threading.Thread(target=self._stop, args=(alloc_id,), daemon=True).start()

    def shutdown(self) -> None:
        for alloc_id in {a for a, _t in self.procs} | {a for a, _t in self.containers}:
            self._stop(alloc_id, final=False)

    # ---- the allocation runner ------------------------------------------------
    def _update(self, alloc_id: str, task: str | None = None, **changes: Any) -> None:
        with self.sim.lock:
            alloc = self.sim.allocs[alloc_id]
            if task is None:
                alloc.update(changes)
            else:
                events = changes.pop("Events", [])
                alloc["TaskStates"][task].update(changes)
                alloc["TaskStates"][task]["Events"].extend(events)
            alloc["ModifyIndex"] = self.sim._next()
            self.sim._save()

    def _fail(self, alloc_id: str, task: str, events: list[dict]) -> None:
        now = time.time()
        from .server import _iso

        self._update(alloc_id, task, State="dead", Failed=True, FinishedAt=_iso(now), Events=events)
        self._update(alloc_id, ClientStatus="failed", ClientDescription="Failed tasks")
        self._set_health(alloc_id, False)

    def _set_health(self, alloc_id: str, healthy: bool) -> None:
        from .server import _iso

        with self.sim.lock:
            alloc = self.sim.allocs[alloc_id]
            if alloc["DeploymentID"] and alloc["DeploymentStatus"] is None:
                alloc["DeploymentStatus"] = {"Healthy": healthy, "Timestamp": _iso(time.time()), "Canary": False,
                                             "ModifyIndex": self.sim._next()}
            self.sim._settle()

    def _ports(self, group: dict) -> list[dict]:
        ports = []
        for net in group.get("Networks") or []:
            for port in net.get("ReservedPorts") or []:
                ports.append({"Label": port["Label"], "Value": port["Value"], "To": port.get("To", 0),
                              "HostIP": "127.0.0.1"})
            for port in net.get("DynamicPorts") or []:
                ports.append({"Label": port["Label"], "Value": _free_port(), "To": port.get("To", 0),
                              "HostIP": "127.0.0.1"})
        return ports

    def _run(self, alloc_id: str, job: dict) -> None:
        with self.sim.lock:
            alloc = self.sim.allocs[alloc_id]
            group = next(g for g in job["TaskGroups"] if g["Name"] == alloc["TaskGroup"])
        ports = self._ports(group)
        self._update(alloc_id, AllocatedResources={"Shared": {"Ports": ports, "Networks": None},
                                                   "Tasks": {t["Name"]: {} for t in group["Tasks"]}})
        alloc_dir = os.path.join(self.config.data_dir, "alloc", alloc_id)
        os.makedirs(os.path.join(alloc_dir, "alloc", "logs"), exist_ok=True)
        os.makedirs(os.path.join(alloc_dir, "alloc", "data"), exist_ok=True)
        started = []
        for task in group["Tasks"]:
            if alloc_id in self.stopping:
                return
            ok = self._start_task(alloc_id, job, group, task, alloc_dir, ports)
            if not ok:
                self._kill_started(alloc_id, started)
                return
            started.append(task["Name"])
        with self.sim.lock:  # a short batch task may have finished already
            if self.sim.allocs[alloc_id]["ClientStatus"] == "pending":
                self._update(alloc_id, ClientStatus="running")
        services = self._register_services(alloc_id, job, group, ports)
        healthy = self._wait_healthy(alloc_id, group, services)
        if healthy is not None:
            self._set_health(alloc_id, healthy)

    def _kill_started(self, alloc_id: str, tasks: list[str]) -> None:
        for name in tasks:
            proc = self.procs.get((alloc_id, name))
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def _env(self, alloc_id: str, job: dict, group: dict, task: dict, task_dir: str, alloc_dir: str,
             ports: list[dict]) -> dict[str, str]:
        env = {
            "NOMAD_ALLOC_ID": alloc_id, "NOMAD_ALLOC_NAME": self.sim.allocs[alloc_id]["Name"],
            "NOMAD_ALLOC_INDEX": self.sim.allocs[alloc_id]["Name"].rsplit("[", 1)[-1].rstrip("]"),
            "NOMAD_JOB_ID": job["ID"], "NOMAD_JOB_NAME": job["Name"], "NOMAD_JOB_PARENT_ID": job.get("ParentID", ""),
            "NOMAD_GROUP_NAME": group["Name"], "NOMAD_TASK_NAME": task["Name"], "NOMAD_NAMESPACE": job["Namespace"],
            "NOMAD_REGION": self.sim.region, "NOMAD_DC": self.sim.datacenter,
            "NOMAD_ALLOC_DIR": os.path.join(alloc_dir, "alloc"), "NOMAD_TASK_DIR": os.path.join(task_dir, "local"),
            "NOMAD_SECRETS_DIR": os.path.join(task_dir, "secrets"),
            "NOMAD_CPU_LIMIT": str((task.get("Resources") or {}).get("CPU", 100)),
            "NOMAD_MEMORY_LIMIT": str((task.get("Resources") or {}).get("MemoryMB", 300)),
        }
        for port in ports:
            label = port["Label"].replace("-", "_")
            env["NOMAD_PORT_%s" % label] = env["NOMAD_HOST_PORT_%s" % label] = str(port["Value"])
            env["NOMAD_IP_%s" % label] = "127.0.0.1"
            env["NOMAD_ADDR_%s" % label] = "127.0.0.1:%d" % port["Value"]
        for key, value in (self.config.meta or {}).items():
            env["NOMAD_META_%s" % key] = str(value)
        merged_meta = {**(job.get("Meta") or {}), **(group.get("Meta") or {}), **(task.get("Meta") or {})}
        for key, value in merged_meta.items():
            env["NOMAD_META_%s" % key] = str(value)
        return env

    @staticmethod
    def _interpolate(value: Any, env: dict[str, str], meta: dict[str, str]) -> Any:
        if isinstance(value, list):
            return [Runner._interpolate(v, env, meta) for v in value]
        if not isinstance(value, str):
            return value
        import re

        def sub(match):
            name = match.group(1)
            if name.startswith("env."):
                return env.get(name[4:], "")
            if name.startswith("meta."):
                return meta.get(name[5:], "")
            if name.startswith("node.unique.name"):
                return "sim-node"
            return env.get(name, match.group(0))

        return re.sub(r"\$\{([^}]+)\}", sub, value)

    def _vault_token(self, alloc_id: str, job: dict, group: dict, task: dict) -> tuple[str | None, str]:
        vault = task.get("Vault") or {}
        identity = next((i for i in task.get("Identities") or [] if i.get("Name") == "vault_default"), None)
        if identity is None:
            return None, "task has no vault_default workload identity"
        jwt = self.sim.sign_identity(job, group, task, alloc_id, identity)
        role = vault.get("Role") or ""
        body = {"jwt": jwt}
        if role:
            body["role"] = role
        mount = self.config.vault_jwt_path
        try:
            status, answer = _http("PUT", "%s/v1/auth/%s/login" % (self.config.vault_addr.rstrip("/"), mount), body)
        except OSError as exc:
            return None, "failed to derive Vault token: %s" % exc
        if status != 200:
            errors = (answer or {}).get("errors") if isinstance(answer, dict) else [answer]
            return None, "failed to derive Vault token: Error making API request.\n\nURL: PUT %s/v1/auth/%s/login\n" \
                "Code: %d. Errors:\n\n* %s" % (self.config.vault_addr, mount, status, "\n* ".join(map(str, errors)))
        return answer["auth"]["client_token"], ""

    def _secret_reader(self, token: str):
        def read(path: str) -> dict:
            url = "%s/v1/%s" % (self.config.vault_addr.rstrip("/"), path.lstrip("/"))
            status, answer = _http("GET", url, headers={"X-Vault-Token": token})
            if status == 404:
                raise tmpl.SecretError("vault.read(%s): no secret exists at %s" % (path, path))
            if status != 200:
                errors = (answer or {}).get("errors") if isinstance(answer, dict) else [answer]
                detail = "\n* ".join(map(str, errors))
                raise tmpl.SecretError("vault.read(%s): vault.read(%s): Error making API request.\n\nURL: GET %s\n"
                                       "Code: %d. Errors:\n\n* %s" % (path, path, url, status, detail))
            # consul-template's view of a secret: .Data is the response's data (KV v2: .Data.data.FIELD).
            return {"Data": answer.get("data"), "LeaseID": answer.get("lease_id", ""),
                    "LeaseDuration": answer.get("lease_duration", 0), "Renewable": answer.get("renewable", False),
                    "Warnings": answer.get("warnings")}
        return read

    def _start_task(self, alloc_id: str, job: dict, group: dict, task: dict, alloc_dir: str,
                    ports: list[dict]) -> bool:
        from .server import _iso

        name = task["Name"]
        task_dir = os.path.join(alloc_dir, name)
        for sub in ("local", "secrets", "tmp"):
            os.makedirs(os.path.join(task_dir, sub), exist_ok=True)
        self._update(alloc_id, name, Events=[_event("Task Setup", "Building Task Directory")])
        env = self._env(alloc_id, job, group, task, task_dir, alloc_dir, ports)
        for key, value in (task.get("Env") or {}).items():
            env[key] = self._interpolate(value, env, self.config.meta)
        token = None
        if task.get("Vault"):
            token, error = self._vault_token(alloc_id, job, group, task)
            if token is None:
                self._fail(alloc_id, name, [_event("Killing", error, fails=True, VaultError=error,
                                                   KillReason=error)])
                return False
            env["VAULT_TOKEN"] = token
            with open(os.path.join(task_dir, "secrets", "vault_token"), "w", encoding="utf-8") as fh:
                fh.write(token)
        for i, spec in enumerate(task.get("Templates") or []):
            dest = os.path.join(task_dir, spec.get("DestPath") or "local/template-%d" % i)
            try:
                text = tmpl.render(spec.get("EmbeddedTmpl") or "", lambda k: env.get(k, os.environ.get(k, "")),
                                   self._secret_reader(token) if token else _no_vault, dest,
                                   spec.get("LeftDelim") or "{{", spec.get("RightDelim") or "}}")
            except (tmpl.TemplateError, tmpl.SecretError) as exc:
                message = "Template failed: %s" % exc
                self._fail(alloc_id, name, [_event("Killing", message, fails=True, KillReason=message)])
                return False
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(dest, int(str(spec.get("Perms") or "0644"), 8))
            if spec.get("Envvars"):
                env.update(tmpl.parse_env_file(text))
        self._update(alloc_id, name, Events=[_event("Template", "Template rendered")] if task.get("Templates")
                     else [])
        config = task.get("Config") or {}
        if task.get("Driver") == "docker":
            return self._start_docker(alloc_id, job, group, task, task_dir, alloc_dir, ports, env)
        command = self._interpolate(config.get("command"), env, self.config.meta)
        if not command:
            self._fail(alloc_id, name, [_event("Failed Validation", "missing command", fails=True)])
            return False
        argv = [command, *self._interpolate(list(config.get("args") or []), env, self.config.meta)]
        proc_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
        logs = os.path.join(alloc_dir, "alloc", "logs")
        try:
            with open(os.path.join(logs, "%s.stdout.0" % name), "ab") as out, \
                    open(os.path.join(logs, "%s.stderr.0" % name), "ab") as err:
                proc = subprocess.Popen(argv, cwd=task_dir, env=proc_env, stdout=out, stderr=err,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            message = "failed to launch command with executor: %s" % exc
            self._fail(alloc_id, name, [_event("Driver Failure", message, fails=True, DriverError=message),
                                        _event("Not Restarting", "Error was unrecoverable", fails=True)])
            return False
        self.procs[(alloc_id, name)] = proc
        self._update(alloc_id, name, State="running", StartedAt=_iso(time.time()),
                     Events=[_event("Started", "Task started by client")])
        threading.Thread(target=self._watch, args=(alloc_id, job, name, proc), daemon=True).start()
        return True

    def _start_docker(self, alloc_id: str, job: dict, group: dict, task: dict, task_dir: str, alloc_dir: str,
                      ports: list[dict], env: dict[str, str]) -> bool:
        """Run a docker task as a container of the local daemon (never pulls: the image must exist)."""
        from .server import _iso

        name = task["Name"]
        config = task.get("Config") or {}
        image = config.get("image") or ""
        inspect = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, timeout=60,
                                 check=False)
        if inspect.returncode != 0:
            message = "Failed to pull `%s`: the image is not in the local Docker daemon (the simulator never pulls)" \
                % image
            self._fail(alloc_id, name, [_event("Driver Failure", message, fails=True, DriverError=message),
                                        _event("Not Restarting", "Error was unrecoverable", fails=True)])
            return False
        # Inside the container the task sees Nomad's docker paths.
        inner = dict(env, NOMAD_ALLOC_DIR="/alloc", NOMAD_TASK_DIR="/local", NOMAD_SECRETS_DIR="/secrets")
        argv = ["docker", "run", "-d", "--name", "%s-%s" % (name, alloc_id),
                "--label", "com.hashicorp.nomad.alloc_id=%s" % alloc_id,
                "-v", "%s:/alloc" % os.path.join(alloc_dir, "alloc"),
                "-v", "%s:/local" % os.path.join(task_dir, "local"),
                "-v", "%s:/secrets" % os.path.join(task_dir, "secrets")]
        by_label = {p["Label"]: p for p in ports}
        host_network = config.get("network_mode") == "host"
        if host_network:  # the task shares the host's network: its ports are the allocated host ports
            argv += ["--network", "host"]
        elif config.get("network_mode"):
            argv += ["--network", config["network_mode"]]
        for label in [] if host_network else config.get("ports") or []:
            port = by_label.get(label)
            if port is None:
                message = "Failed to create container configuration for image \"%s\": port label \"%s\" not found" % (
                    image, label)
                self._fail(alloc_id, name, [_event("Driver Failure", message, fails=True, DriverError=message)])
                return False
            inside = port["To"] or port["Value"]
            argv += ["-p", "127.0.0.1:%d:%d" % (port["Value"], inside)]
            inner["NOMAD_PORT_%s" % label.replace("-", "_")] = str(inside)
        for key, value in sorted(inner.items()):
            argv += ["-e", "%s=%s" % (key, value)]
        entrypoint = config.get("entrypoint") or []
        if entrypoint:
            argv += ["--entrypoint", entrypoint[0]]
        argv.append(image)
        argv += entrypoint[1:]
        if config.get("command"):
            argv.append(self._interpolate(config["command"], inner, self.config.meta))
        argv += self._interpolate(list(config.get("args") or []), inner, self.config.meta)
        started = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if started.returncode != 0:
            message = "Failed to start container: %s" % started.stderr.strip()
            self._fail(alloc_id, name, [_event("Driver Failure", message, fails=True, DriverError=message)])
            return False
        container = started.stdout.strip()
        self.containers[(alloc_id, name)] = container
        self._update(alloc_id, name, State="running", StartedAt=_iso(time.time()),
                     Events=[_event("Driver", "Downloading image"), _event("Started", "Task started by client")])
        proc = subprocess.Popen(["docker", "wait", container], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._watch, args=(alloc_id, job, name, proc), daemon=True).start()
        return True

    def _watch(self, alloc_id: str, job: dict, name: str, proc: subprocess.Popen) -> None:
        from .server import _iso

        code = proc.wait()
        if (alloc_id, name) in self.containers:  # `docker wait` prints the container's exit code
            out = proc.stdout.read().strip() if proc.stdout else ""
            code = int(out) if out.lstrip("-").isdigit() else code
        if alloc_id in self.stopping:
            return
        events = [_event("Terminated", "Exit Code: %d" % code, exit_code=code)]
        batch = job["Type"] in ("batch", "sysbatch")
        failed = code != 0 or not batch
        if failed:
            events.append(_event("Not Restarting", "Exceeded allowed attempts 0 in interval 0s", fails=True))
        self._update(alloc_id, name, State="dead", Failed=failed, FinishedAt=_iso(time.time()), Events=events)
        with self.sim.lock:
            states = self.sim.allocs[alloc_id]["TaskStates"].values()
            if all(s["State"] == "dead" for s in states):
                any_failed = any(s["Failed"] for s in states)
                self._update(alloc_id, ClientStatus="failed" if any_failed else "complete")
                self._deregister(alloc_id)
                self.sim._settle()

    # ---- Consul ------------------------------------------------------------------
    def _register_services(self, alloc_id: str, job: dict, group: dict, ports: list[dict]) -> list[str]:
        if not self.config.consul_addr:
            return []
        by_label = {p["Label"]: p for p in ports}
        headers = {"X-Consul-Token": self.config.consul_token} if self.config.consul_token else {}
        ids = []
        services = [("group-" + group["Name"], s) for s in group.get("Services") or []]
        services += [(t["Name"], s) for t in group["Tasks"] for s in t.get("Services") or []]
        env = {"NOMAD_JOB_NAME": job["Name"], "NOMAD_GROUP_NAME": group["Name"]}
        for owner, svc in services:
            if (svc.get("Provider") or "consul") != "consul":
                continue
            port = by_label.get(svc.get("PortLabel") or "")
            sname = self._interpolate(svc["Name"], env, self.config.meta)
            sid = "_nomad-task-%s-%s-%s-%s" % (alloc_id, owner, sname, svc.get("PortLabel") or "")
            checks = []
            for check in svc.get("Checks") or []:
                cport = by_label.get(check.get("PortLabel") or svc.get("PortLabel") or "") or port
                entry = {"Name": check.get("Name") or "service: \"%s\" check" % sname,
                         "Interval": "%ds" % max(1, (check.get("Interval") or 10 * SEC) // SEC),
                         "Timeout": "%ds" % max(1, (check.get("Timeout") or 2 * SEC) // SEC)}
                if check.get("Type") == "http" and cport:
                    scheme, path = check.get("Protocol") or "http", check.get("Path") or "/"
                    entry["HTTP"] = "%s://127.0.0.1:%d%s" % (scheme, cport["Value"], path)
                    entry["Method"] = check.get("Method") or "GET"
                elif check.get("Type") == "tcp" and cport:
                    entry["TCP"] = "127.0.0.1:%d" % cport["Value"]
                else:
                    continue
                checks.append(entry)
            body = {"ID": sid, "Name": sname, "Tags": svc.get("Tags") or [], "Address": "127.0.0.1",
                    "Port": port["Value"] if port else 0, "Checks": checks,
                    "Meta": {"external-source": "nomad", **(svc.get("Meta") or {})}}
            status, answer = _http("PUT", "%s/v1/agent/service/register" % self.config.consul_addr.rstrip("/"), body,
                                   headers)
            if status != 200:
                self._update(alloc_id, group["Tasks"][0]["Name"], Events=[_event(
                    "Task hook failed", "consul services hook: unable to register service %s: %s" % (sname, answer))])
                continue
            ids.append(sid)
        self.services[alloc_id] = ids
        return ids

    def _deregister(self, alloc_id: str) -> None:
        headers = {"X-Consul-Token": self.config.consul_token} if self.config.consul_token else {}
        for sid in self.services.pop(alloc_id, []):
            try:
                _http("PUT", "%s/v1/agent/service/deregister/%s" % (self.config.consul_addr.rstrip("/"), sid),
                      headers=headers)
            except OSError:
                pass

    def _wait_healthy(self, alloc_id: str, group: dict, services: list[str]) -> bool | None:
        update = group.get("Update") or {}
        min_healthy = (update.get("MinHealthyTime") or 10 * SEC) / SEC
        deadline = time.monotonic() + min((update.get("HealthyDeadline") or 300 * SEC) / SEC, 120)
        time.sleep(min(min_healthy, 1.0))  # the simulator caps min_healthy_time at 1 s (README)
        headers = {"X-Consul-Token": self.config.consul_token} if self.config.consul_token else {}
        while time.monotonic() < deadline:
            if alloc_id in self.stopping:
                return None
            with self.sim.lock:
                alloc = self.sim.allocs[alloc_id]
                if alloc["ClientStatus"] == "failed":
                    return False
                if alloc["ClientStatus"] == "complete":
                    return True
            passing = True
            for sid in services:
                try:
                    status, _answer = _http("GET", "%s/v1/agent/health/service/id/%s?format=json" % (
                        self.config.consul_addr.rstrip("/"), sid), headers=headers)
                except OSError:
                    status = 0
                if status != 200:
                    passing = False
            if passing:
                return True
            time.sleep(0.5)
        return False

    def _stop(self, alloc_id: str, final: bool = True) -> None:
        from .server import _iso

        self._deregister(alloc_id)
        for key in [k for k in list(self.containers) if k[0] == alloc_id]:
            container = self.containers.pop(key)
            subprocess.run(["docker", "stop", "-t", "5", container], capture_output=True, timeout=60, check=False)
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60, check=False)
            if final:
                self._update(alloc_id, key[1], State="dead", FinishedAt=_iso(time.time()),
                             Events=[_event("Killing", "Sent interrupt. Waiting 5s before force killing"),
                                     _event("Killed", "Task successfully killed")])
        names = [t for a, t in list(self.procs) if a == alloc_id]
        for name in names:
            proc = self.procs.pop((alloc_id, name))
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGINT)
                    proc.wait(5)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(5)
            if final:
                self._update(alloc_id, name, State="dead", FinishedAt=_iso(time.time()),
                             Events=[_event("Killing", "Sent interrupt. Waiting 5s before force killing"),
                                     _event("Killed", "Task successfully killed")])
        if final:
            shutil.rmtree(os.path.join(self.config.data_dir, "alloc", alloc_id, "tmp"), ignore_errors=True)


def _no_vault(path: str) -> dict:
    raise tmpl.SecretError("vault.read(%s): the task has no vault block, so it has no Vault token" % path)
