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
- ``template`` blocks rendered (see template.py) with that Vault token, those that
  query Consul again while the task runs (change_mode applied); a failed
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
import urllib.parse
import urllib.request
from collections.abc import Callable
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
    # Declared stand-ins: docker images whose software cannot exist here (the apps,
    # Grafana). A task using one runs STANDIN_IMAGE as an HTTP responder instead.
    standin_images: tuple[str, ...] = ()
    # client { host_volume "NAME" { path, read_only } } and the docker plugin's volumes { enabled }
    host_volumes: dict[str, dict] = field(default_factory=dict)
    docker_volumes_enabled: bool = False


STANDIN_IMAGE = "selfhost-homelab/standin:latest"


# How often a template that queries Consul is rendered again (consul-template uses blocking queries).
TEMPLATE_POLL_SECONDS = 2.0


def declared_standin(image: str, declared: tuple[str, ...]) -> bool:
    """Whether ``image`` is declared a stand-in: an entry names it exactly, or names its repository (any tag)."""
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return any(entry in (image, repo) for entry in declared if entry)


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
        self.done: dict[tuple[str, str], threading.Event] = {}
        self.restarts: dict[tuple[str, str], list[float]] = {}
        self.launchers: dict[tuple[str, str], Any] = {}
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
        return unmet_constraints(job, group, self.node_value, self.host_volume)

    def host_volume(self, job: dict, vol: dict) -> dict | None:
        """This node's host volume for a group ``volume`` block of type host: {"path", "read_only"}, or None."""
        return find_host_volume(job, vol, self.config.host_volumes, self.sim.host_volumes.values(), self.sim.node_id)

    # ---- lifecycle, called by NomadSim under its lock -------------------------------
    def start(self, alloc: dict, job: dict) -> None:
        alloc["_outcome"] = "real"
        threading.Thread(target=self._run, args=(alloc["ID"], job), daemon=True).start()

    def stop(self, alloc_id: str) -> None:
        self.stopping.add(alloc_id)
        for key, done in list(self.done.items()):
            if key[0] == alloc_id:
                done.set()
        threading.Thread(target=self._stop, args=(alloc_id,), daemon=True).start()

    def shutdown(self) -> None:
        """The agent stops: like Nomad's client, it leaves its tasks (and their services) running;
        the next agent on this data dir re-attaches to them (:meth:`reattach`)."""
        self.stopping.add("*shutdown*")

    def reattach(self, alloc: dict, job: dict) -> bool:
        """Watch again the tasks of ``alloc`` that a previous agent started; False if none is left to watch."""
        handles = alloc.get("_handles") or {}
        group = next((g for g in job["TaskGroups"] if g["Name"] == alloc["TaskGroup"]), None)
        if group is None or not handles:
            return False
        watched = False
        for task in group["Tasks"]:
            handle = handles.get(task["Name"])
            state = alloc["TaskStates"].get(task["Name"], {})
            if not handle or state.get("State") != "running":
                continue
            key = (alloc["ID"], task["Name"])
            self.done[key] = threading.Event()
            if "container" in handle:
                self.containers[key] = handle["container"]
                proc = subprocess.Popen(["docker", "wait", handle["container"]], stdout=subprocess.PIPE, text=True)
            else:
                proc = _Adopted(handle["pid"])
                self.procs[key] = proc
            threading.Thread(target=self._watch, args=(alloc["ID"], job, group, task, proc), daemon=True).start()
            watched = True
        if watched:
            ports = (alloc.get("AllocatedResources") or {}).get("Shared", {}).get("Ports") or []
            threading.Thread(target=self._register_services, args=(alloc["ID"], job, group, ports),
                             daemon=True).start()
        return watched

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
        if (alloc_id, task) in self.done:
            self.done[(alloc_id, task)].set()
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
        # Lifecycle: prestart tasks first (the non-sidecar ones must complete successfully before
        # the main tasks start), then the main tasks, then the poststart tasks. Poststop tasks are
        # not run (README).
        hooks = {t["Name"]: (t.get("Lifecycle") or {}).get("Hook") or "" for t in group["Tasks"]}
        prestart = [t for t in group["Tasks"] if hooks[t["Name"]] == "prestart"]
        main = [t for t in group["Tasks"] if hooks[t["Name"]] == ""]
        poststart = [t for t in group["Tasks"] if hooks[t["Name"]] == "poststart"]
        started = []
        for phase in (prestart, main, poststart):
            for task in phase:
                if alloc_id in self.stopping:
                    return
                self.done[(alloc_id, task["Name"])] = threading.Event()
                if not self._start_task(alloc_id, job, group, task, alloc_dir, ports):
                    self._kill_started(alloc_id, started)
                    self._update(alloc_id, ClientStatus="failed", ClientDescription="Failed tasks")
                    return
                started.append(task["Name"])
            if phase is prestart:
                for task in phase:
                    if (task.get("Lifecycle") or {}).get("Sidecar"):
                        continue
                    self.done[(alloc_id, task["Name"])].wait()
                    with self.sim.lock:
                        failed = self.sim.allocs[alloc_id]["TaskStates"][task["Name"]]["Failed"]
                    if failed:  # the main tasks never start
                        self._kill_started(alloc_id, started)
                        self._update(alloc_id, ClientStatus="failed", ClientDescription="Failed tasks")
                        self._set_health(alloc_id, False)
                        return
                if alloc_id in self.stopping:
                    return
            elif phase is main:
                with self.sim.lock:  # a short batch task may have finished already
                    if self.sim.allocs[alloc_id]["ClientStatus"] == "pending":
                        self._update(alloc_id, ClientStatus="running")
        services = self._register_services(alloc_id, job, group, ports)
        healthy = self._wait_healthy(alloc_id, group, services)
        if healthy is not None:
            self._set_health(alloc_id, healthy)

    def _kill_started(self, alloc_id: str, tasks: list[str], reason: str = "") -> None:
        """Stop the named tasks of an allocation that is failing (Nomad: a sibling task failed)."""
        from .server import _iso

        for name in tasks:
            key = (alloc_id, name)
            with self.sim.lock:
                state = self.sim.allocs[alloc_id]["TaskStates"][name]
                if state["State"] == "dead":
                    continue
                state["State"] = "dead"  # before the kill, so its watcher does not restart it
            self._kill(key)
            events = [_event("Sibling Task Failed", "Task's sibling %s failed" % reason, FailedSibling=reason)] \
                if reason else []
            self._update(alloc_id, name, State="dead", FinishedAt=_iso(time.time()),
                         Events=[*events, _event("Killing", "Sent interrupt. Waiting 5s before force killing"),
                                 _event("Killed", "Task successfully killed")])

    def _kill(self, key: tuple[str, str]) -> None:
        container = self.containers.get(key)
        if container:
            subprocess.run(["docker", "stop", "-t", "5", container], capture_output=True, timeout=60, check=False)
        proc = self.procs.get(key)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(5)
            except (subprocess.TimeoutExpired, ProcessLookupError, PermissionError):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait(5)

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
        try:  # a client-only agent has its servers sign it (cluster.py)
            jwt = self.sim.sign_identity(job, group, task, alloc_id, identity)
        except OSError as exc:
            return None, "failed to derive Vault token: %s" % exc
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

    def _service_reader(self):
        return consul_service_reader(self.config.consul_addr, self.config.consul_token)

    def _services_reader(self):
        return consul_services_reader(self.config.consul_addr, self.config.consul_token)

    def _render_template(self, spec: dict, env: dict[str, str], token: str | None, dest: str) -> str:
        return tmpl.render(spec.get("EmbeddedTmpl") or "", lambda k: env.get(k, os.environ.get(k, "")),
                           self._secret_reader(token) if token else _no_vault, dest,
                           spec.get("LeftDelim") or "{{", spec.get("RightDelim") or "}}",
                           service=self._service_reader() if self.config.consul_addr else None,
                           services=self._services_reader() if self.config.consul_addr else None)

    def _watch_templates(self, alloc_id: str, task: dict, watched: list[tuple[dict, str, str]],
                         env: dict[str, str], token: str | None) -> None:
        """consul-template's watch, by polling: re-render each template that queries Consul while
        its task runs; on a change write the file and apply its change_mode (noop, signal, restart)."""
        name = task["Name"]
        key = (alloc_id, name)
        while True:
            time.sleep(TEMPLATE_POLL_SECONDS)
            if alloc_id in self.stopping or "*shutdown*" in self.stopping:
                return
            if key not in self.containers and key not in self.procs:
                continue  # not started yet, or between restarts
            for i, (spec, dest, last) in enumerate(watched):
                try:
                    text = self._render_template(spec, env, token, dest)
                except (tmpl.TemplateError, tmpl.SecretError, OSError, ValueError):
                    continue  # consul-template keeps the last rendering and retries
                if text == last:
                    continue
                _write_template(dest, text, spec)
                watched[i] = (spec, dest, text)
                mode = spec.get("ChangeMode") or "restart"
                if mode == "signal":
                    sig = spec.get("ChangeSignal") or "SIGHUP"
                    self._signal(key, sig)
                    event = _event("Signaling", "Template re-rendered", TaskSignal=sig,
                                   TaskSignalReason="Template re-rendered")
                    self._update(alloc_id, name, Events=[event])
                elif mode == "restart" and self.containers.get(key):  # raw_exec: not simulated (README)
                    subprocess.run(["docker", "restart", "-t", "5", self.containers[key]], capture_output=True,
                                   timeout=120, check=False)
                    self._update(alloc_id, name, Events=[_event("Restart Signaled", "Template with change_mode "
                                                                "restart re-rendered")])

    def _signal(self, key: tuple[str, str], sig: str) -> None:
        container = self.containers.get(key)
        if container:
            subprocess.run(["docker", "kill", "--signal", sig, container], capture_output=True, timeout=60,
                           check=False)
            return
        proc = self.procs.get(key)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, getattr(signal, sig if sig.startswith("SIG") else "SIG" + sig))
            except (ProcessLookupError, PermissionError, AttributeError):
                pass

    def _start_task(self, alloc_id: str, job: dict, group: dict, task: dict, alloc_dir: str,
                    ports: list[dict]) -> bool:
        from .server import _iso

        name = task["Name"]
        task_dir = os.path.join(alloc_dir, name)
        for sub in ("local", "secrets", "tmp"):
            os.makedirs(os.path.join(task_dir, sub), exist_ok=True)
        self._update(alloc_id, name, Events=[_event("Task Setup", "Building Task Directory")])
        env = self._env(alloc_id, job, group, task, task_dir, alloc_dir, ports)
        if task.get("Driver") == "docker":  # a docker task's environment (and templates) see the container's paths
            env.update(NOMAD_ALLOC_DIR="/alloc", NOMAD_TASK_DIR="/local", NOMAD_SECRETS_DIR="/secrets")
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
        watched: list[tuple[dict, str, str]] = []
        for i, spec in enumerate(task.get("Templates") or []):
            dest = os.path.join(task_dir, spec.get("DestPath") or "local/template-%d" % i)
            try:
                text = self._render_template(spec, env, token, dest)
            except (tmpl.TemplateError, tmpl.SecretError) as exc:
                message = "Template failed: %s" % exc
                self._fail(alloc_id, name, [_event("Killing", message, fails=True, KillReason=message)])
                return False
            _write_template(dest, text, spec)
            if spec.get("Envvars"):
                env.update(tmpl.parse_env_file(text))
            elif self.config.consul_addr and tmpl.uses_consul(spec.get("EmbeddedTmpl") or "", spec.get("LeftDelim"),
                                                              spec.get("RightDelim")):
                watched.append((spec, dest, text))
        if watched:
            threading.Thread(target=self._watch_templates, args=(alloc_id, task, watched, dict(env), token),
                             daemon=True).start()
        self._update(alloc_id, name, Events=[_event("Template", "Template rendered")] if task.get("Templates")
                     else [])
        config = task.get("Config") or {}
        mounts = self._volume_mounts(job, group, task)
        if mounts and task.get("Driver") != "docker":  # Nomad's volume hook: raw_exec has no mount support
            message = 'volumes: task driver "%s" for "%s" does not support host volumes' % (task.get("Driver"), name)
            self._fail(alloc_id, name, [_event("Task hook failed", message, fails=True),
                                        _event("Not Restarting", "Error was unrecoverable", fails=True)])
            return False
        if task.get("Driver") == "docker":
            return self._start_docker(alloc_id, job, group, task, task_dir, alloc_dir, ports, env, mounts)
        command = self._interpolate(config.get("command"), env, self.config.meta)
        if not command:
            self._fail(alloc_id, name, [_event("Failed Validation", "missing command", fails=True)])
            return False
        argv = [command, *self._interpolate(list(config.get("args") or []), env, self.config.meta)]
        proc_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
        logs = os.path.join(alloc_dir, "alloc", "logs")

        def launch() -> subprocess.Popen:
            with open(os.path.join(logs, "%s.stdout.0" % name), "ab") as out, \
                    open(os.path.join(logs, "%s.stderr.0" % name), "ab") as err:
                proc = subprocess.Popen(argv, cwd=task_dir, env=proc_env, stdout=out, stderr=err,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            self.procs[(alloc_id, name)] = proc
            self._handle(alloc_id, name, {"pid": proc.pid})
            return proc

        try:
            proc = launch()
        except OSError as exc:
            message = "failed to launch command with executor: %s" % exc
            self._fail(alloc_id, name, [_event("Driver Failure", message, fails=True, DriverError=message),
                                        _event("Not Restarting", "Error was unrecoverable", fails=True)])
            return False
        self.launchers[(alloc_id, name)] = launch
        self._update(alloc_id, name, State="running", StartedAt=_iso(time.time()),
                     Events=[_event("Started", "Task started by client")])
        threading.Thread(target=self._watch, args=(alloc_id, job, group, task, proc), daemon=True).start()
        return True

    def _handle(self, alloc_id: str, name: str, handle: dict) -> None:
        """Keep how to find a running task again (pid or container) in the state, for a restarted agent."""
        with self.sim.lock:
            self.sim.allocs[alloc_id].setdefault("_handles", {})[name] = handle
            self.sim._save()

    def _volume_mounts(self, job: dict, group: dict, task: dict) -> list[tuple[str, str, bool]]:
        """(host path, destination, read only) of the task's ``volume_mount`` blocks on host volumes."""
        out = []
        volumes = group.get("Volumes") or {}
        for mount in task.get("VolumeMounts") or []:
            vol = volumes.get(mount.get("Volume") or "") or {}
            found = self.host_volume(job, vol) if vol.get("Type") == "host" else None
            if found is not None:
                out.append((found["path"], mount.get("Destination") or "",
                            bool(vol.get("ReadOnly") or mount.get("ReadOnly") or found.get("read_only"))))
        return out

    def _start_docker(self, alloc_id: str, job: dict, group: dict, task: dict, task_dir: str, alloc_dir: str,
                      ports: list[dict], env: dict[str, str], mounts: list[tuple[str, str, bool]]) -> bool:
        """Run a docker task as a container of the local daemon (never pulls: the image must exist)."""
        from .server import _iso

        name = task["Name"]
        config = task.get("Config") or {}
        image = config.get("image") or ""
        inspect = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, timeout=60,
                                 check=False)
        standin = inspect.returncode != 0 and declared_standin(image, self.config.standin_images)
        if standin:  # a declared stand-in: never an image that was merely forgotten (README)
            inspect = subprocess.run(["docker", "image", "inspect", STANDIN_IMAGE], capture_output=True, text=True,
                                     timeout=60, check=False)
            if inspect.returncode != 0:
                message = "Failed to pull `%s`: the stand-in image for the declared stand-in `%s` is not in the " \
                    "local Docker daemon (run scripts/bootstrap.d/agents.sh)" % (STANDIN_IMAGE, image)
                self._fail(alloc_id, name, [_event("Driver Failure", message, fails=True, DriverError=message),
                                            _event("Not Restarting", "Error was unrecoverable", fails=True)])
                return False
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
        for host, dest, read_only in mounts:  # host volumes (volume + volume_mount)
            argv += ["-v", "%s:%s%s" % (host, dest, ":ro" if read_only else "")]
        try:
            argv += self._docker_volumes(config, task_dir)
        except ValueError as exc:
            message = "Failed to create container configuration for image \"%s\": %s" % (image, exc)
            self._fail(alloc_id, name, [_event("Driver Failure", message, fails=True, DriverError=message),
                                        _event("Not Restarting", "Error was unrecoverable", fails=True)])
            return False
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
        if standin:
            inside = [p["Value"] for p in ports] if host_network else \
                [by_label[label]["To"] or by_label[label]["Value"] for label in config.get("ports") or []]
            argv += ["--entrypoint", "/bin/sh", STANDIN_IMAGE, "-c",
                     self._standin(job, group, task, image, task_dir, inside)]
        else:
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
        events = [_event("Driver", "Downloading image")]
        if standin:
            events.append(_event("Driver", "Running the declared stand-in %s for image %s (simulator)"
                                 % (STANDIN_IMAGE, image)))
        self._handle(alloc_id, name, {"container": container})

        def launch() -> subprocess.Popen:  # a restart starts the same container again
            subprocess.run(["docker", "start", container], capture_output=True, timeout=120, check=False)
            return subprocess.Popen(["docker", "wait", container], stdout=subprocess.PIPE, text=True)

        self.launchers[(alloc_id, name)] = launch
        self._update(alloc_id, name, State="running", StartedAt=_iso(time.time()),
                     Events=[*events, _event("Started", "Task started by client")])
        proc = subprocess.Popen(["docker", "wait", container], stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._watch, args=(alloc_id, job, group, task, proc), daemon=True).start()
        return True

    def _docker_volumes(self, config: dict, task_dir: str) -> list[str]:
        """``docker run`` flags for the docker driver's ``volumes`` and ``mount`` options.

        A relative host path is relative to the task directory; an absolute one needs the
        plugin's ``volumes { enabled = true }``, as Nomad's docker driver requires."""
        def host_path(src: str) -> str:
            if os.path.isabs(src):
                if not self.config.docker_volumes_enabled:
                    raise ValueError('volumes are not enabled; cannot mount host paths: "%s"' % src)
                return src
            return os.path.join(task_dir, src)

        flags = []
        for spec in config.get("volumes") or []:
            parts = str(spec).split(":")
            if len(parts) < 2:
                raise ValueError('invalid docker volume: "%s"' % spec)
            flags += ["-v", ":".join([host_path(parts[0]), *parts[1:]])]
        mounts = config.get("mount") or []
        for mount in [mounts] if isinstance(mounts, dict) else mounts:
            kind = mount.get("type") or "volume"
            target = mount.get("target") or ""
            fields = ["type=%s" % kind, "target=%s" % target]
            if kind == "bind":
                fields.append("source=%s" % host_path(mount.get("source") or ""))
            elif kind == "volume" and mount.get("source"):
                fields.append("source=%s" % mount["source"])
            if mount.get("readonly"):
                fields.append("readonly")
            flags += ["--mount", ",".join(fields)]
        return flags

    @staticmethod
    def _standin(job: dict, group: dict, task: dict, image: str, task_dir: str, inside: list[int]) -> str:
        """The stand-in responder's shell command; its pages are written into the task's local/ (at /local).

        It answers ``/`` and every HTTP check path of the group's and task's services with one
        line naming the job, group and task and saying that it is a stand-in for ``image``."""
        body = "stand-in for %s: job=%s group=%s task=%s\n" % (image, job["Name"], group["Name"], task["Name"])
        root = os.path.join(task_dir, "local", "standin")
        paths = {"/"}
        for svc in (group.get("Services") or []) + (task.get("Services") or []):
            paths.update(c.get("Path") or "/" for c in svc.get("Checks") or [] if c.get("Type") == "http")
        for path in sorted(paths):
            clean = os.path.normpath("/" + path.split("?", 1)[0]).lstrip("/")
            target = os.path.join(root, clean, "index.html") if path.endswith("/") or not clean \
                else os.path.join(root, clean)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as fh:
                fh.write(body)
        servers = ["httpd -p %d -h /local/standin" % port for port in inside]
        hook = task.get("Lifecycle") or {}
        if hook.get("Hook") and not hook.get("Sidecar"):
            return "exit 0"  # a run-to-completion hook (prestart, poststop): the stand-in completes
        if not servers:
            return "exec sleep 2147483647"
        return " && ".join(servers[:-1] + ["exec " + servers[-1].replace("httpd ", "httpd -f ", 1)])

    def _watch(self, alloc_id: str, job: dict, group: dict, task: dict, proc: Any) -> None:
        """Wait for a task to exit; restart it as its ``restart`` policy allows, else end it."""
        from .server import _iso

        name = task["Name"]
        key = (alloc_id, name)
        while True:
            code = proc.wait()
            if key in self.containers:  # `docker wait` prints the container's exit code
                out = proc.stdout.read().strip() if proc.stdout else ""
                code = int(out) if out.lstrip("-").isdigit() else code
            if alloc_id in self.stopping or "*shutdown*" in self.stopping:
                return
            with self.sim.lock:
                if self.sim.allocs[alloc_id]["TaskStates"][name]["State"] == "dead":  # killed as a sibling
                    self._finish(alloc_id, job, group, name)
                    return
            lifecycle = task.get("Lifecycle") or {}
            ephemeral = job["Type"] in ("batch", "sysbatch") or (lifecycle.get("Hook") and not lifecycle.get("Sidecar"))
            terminated = _event("Terminated", "Exit Code: %d" % code, exit_code=code)
            if code == 0 and ephemeral:  # done: batch tasks and non-sidecar lifecycle tasks complete
                self._update(alloc_id, name, State="dead", Failed=False, FinishedAt=_iso(time.time()),
                             Events=[terminated])
                self._finish(alloc_id, job, group, name)
                return
            delay = self._restart_delay(key, task.get("RestartPolicy") or {})
            if delay is None or key not in self.launchers:
                policy = task.get("RestartPolicy") or {}
                reason = "Exceeded allowed attempts %d in interval %s and mode is \"%s\"" % (
                    policy.get("Attempts", 0), _go_duration(policy.get("Interval", 0)), policy.get("Mode", "fail")) \
                    if policy.get("Attempts") else "Policy allows no restarts"
                self._update(alloc_id, name, State="dead", Failed=True, FinishedAt=_iso(time.time()),
                             Events=[terminated, _event("Not Restarting", reason, fails=True)])
                self._finish(alloc_id, job, group, name)
                return
            with self.sim.lock:
                restarts = self.sim.allocs[alloc_id]["TaskStates"][name]["Restarts"] + 1
            self._update(alloc_id, name, Restarts=restarts, LastRestart=_iso(time.time()), Events=[
                terminated, _event("Restarting", "Task restarting in %s" % _go_duration(int(delay * SEC)),
                                   RestartReason="Restart within policy", StartDelay=int(delay * SEC))])
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if alloc_id in self.stopping or "*shutdown*" in self.stopping:
                    return
                time.sleep(0.1)
            try:
                proc = self.launchers[key]()
            except OSError as exc:
                message = "failed to launch command with executor: %s" % exc
                self._update(alloc_id, name, State="dead", Failed=True, FinishedAt=_iso(time.time()), Events=[
                    _event("Driver Failure", message, fails=True, DriverError=message)])
                self._finish(alloc_id, job, group, name)
                return
            self._update(alloc_id, name, State="running", Events=[_event("Started", "Task started by client")])

    def _restart_delay(self, key: tuple[str, str], policy: dict) -> float | None:
        """Seconds to wait before the next restart under ``policy``, or None when it allows no more.

        ``attempts`` restarts within ``interval``; after that mode ``fail`` gives up and mode
        ``delay`` waits until the interval has passed (Nomad's restart tracker)."""
        now = time.monotonic()
        interval = (policy.get("Interval") or 0) / SEC
        history = [t for t in self.restarts.get(key, []) if now - t < interval]
        delay = (policy.get("Delay") or 0) / SEC
        if len(history) >= (policy.get("Attempts") or 0):
            if policy.get("Mode") != "delay" or not policy.get("Attempts"):
                return None
            delay = max(delay, interval - (now - history[0]))
            history = []
        self.restarts[key] = [*history, now + delay]
        return delay

    def _finish(self, alloc_id: str, job: dict, group: dict, name: str) -> None:
        """A task has ended for good: fail the allocation on a failure (killing its siblings), stop the
        sidecars once the main tasks are done, and end the allocation when all its tasks are dead."""
        done = self.done.get((alloc_id, name))
        if done is not None:
            done.set()
        with self.sim.lock:
            states = self.sim.allocs[alloc_id]["TaskStates"]
            failed = states[name]["Failed"]
        lifecycles = {t["Name"]: t.get("Lifecycle") or {} for t in group["Tasks"]}
        if failed:
            self._kill_started(alloc_id, [t for t in states if t != name and states[t]["State"] == "running"], name)
        elif not lifecycles[name].get("Hook"):
            main_left = [t for t in states if not lifecycles[t].get("Hook") and states[t]["State"] != "dead"]
            if not main_left:  # the main tasks are done: sidecars and poststart tasks are stopped
                self._kill_started(alloc_id, [t for t in states if states[t]["State"] == "running"])
        with self.sim.lock:
            states = self.sim.allocs[alloc_id]["TaskStates"].values()
            pending_main = any(s["State"] == "pending" for s in states)
            if all(s["State"] == "dead" for s in states) or (failed and pending_main):
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
        keys = {k for k in list(self.containers) + list(self.procs) if k[0] == alloc_id}
        for key in keys:
            self._kill(key)
            container = self.containers.pop(key, None)
            if container:
                subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60, check=False)
            self.procs.pop(key, None)
            if final:
                with self.sim.lock:
                    dead = self.sim.allocs[alloc_id]["TaskStates"][key[1]]["State"] == "dead"
                if not dead:
                    self._update(alloc_id, key[1], State="dead", FinishedAt=_iso(time.time()),
                                 Events=[_event("Killing", "Sent interrupt. Waiting 5s before force killing"),
                                         _event("Killed", "Task successfully killed")])
        if final:
            shutil.rmtree(os.path.join(self.config.data_dir, "alloc", alloc_id, "tmp"), ignore_errors=True)


class _Adopted:
    """A task process started by a previous agent: not our child, so it is polled (its exit code is
    not known to us: reported as 0 if it is gone, see README)."""

    def __init__(self, pid: int):
        self.pid = pid

    def poll(self) -> int | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return 0
        except PermissionError:
            return None
        try:  # a zombie is gone too
            with open("/proc/%d/stat" % self.pid, encoding="utf-8") as fh:
                return 0 if fh.read().rsplit(")", 1)[1].split()[0] == "Z" else None
        except OSError:
            return 0

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.2)
        return 0


def _go_duration(ns: int) -> str:
    """A duration as Go's time.Duration prints it (1m0s, 24h0m0s, 15s, 500ms)."""
    if ns == 0:
        return "0s"
    if ns < SEC:
        return "%dms" % (ns // 10**6)
    seconds = ns / SEC
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    frac = seconds - int(seconds)
    sec_text = ("%.9f" % (secs + frac)).rstrip("0").rstrip(".")
    if hours:
        return "%dh%dm%ss" % (hours, minutes, sec_text)
    if minutes:
        return "%dm%ss" % (minutes, sec_text)
    return "%ss" % sec_text


def consul_service_reader(consul_addr: str, token: str | None = None) -> Callable[[str], list[dict]]:
    """consul-template's ``service "NAME"`` (or ``"TAG.NAME"``): the passing instances from Consul's
    health API."""
    headers = {"X-Consul-Token": token} if token else {}

    def read(query: str) -> list[dict]:
        tag, _sep, name = query.rpartition(".")
        url = "%s/v1/health/service/%s?passing=true" % (consul_addr.rstrip("/"), urllib.parse.quote(name))
        if tag:
            url += "&tag=%s" % urllib.parse.quote(tag)
        status, answer = _http("GET", url, headers=headers)
        if status != 200:
            raise tmpl.TemplateError("health.service(%s): Unexpected response code: %d (%s)" % (query, status, answer))
        return [{"ID": e["Service"]["ID"], "Name": e["Service"]["Service"], "Node": e["Node"]["Node"],
                 "Address": e["Service"].get("Address") or e["Node"]["Address"], "Port": e["Service"]["Port"],
                 "NodeAddress": e["Node"]["Address"], "Tags": e["Service"].get("Tags") or [],
                 "ServiceMeta": e["Service"].get("Meta") or {}} for e in answer or []]
    return read


def consul_services_reader(consul_addr: str, token: str | None = None) -> Callable[[], list[dict]]:
    """consul-template's ``services``: the catalog's services with their tags, sorted by name."""
    headers = {"X-Consul-Token": token} if token else {}

    def read() -> list[dict]:
        status, answer = _http("GET", "%s/v1/catalog/services" % consul_addr.rstrip("/"), headers=headers)
        if status != 200:
            raise tmpl.TemplateError("catalog.services: Unexpected response code: %d (%s)" % (status, answer))
        return [{"Name": k, "Tags": sorted(set(v or []))} for k, v in sorted((answer or {}).items())]
    return read


def _write_template(path: str, text: str, spec: dict) -> None:
    """A rendered template on disk with its ``perms`` and ``uid``/``gid`` (-1 or none: the agent's)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, int(str(spec.get("Perms") or "0644"), 8))
    uid, gid = spec.get("Uid"), spec.get("Gid")
    uid = -1 if uid is None else int(uid)
    gid = -1 if gid is None else int(gid)
    if uid >= 0 or gid >= 0:
        os.chown(path, uid, gid)


def _no_vault(path: str) -> dict:
    raise tmpl.SecretError("vault.read(%s): the task has no vault block, so it has no Vault token" % path)


def unmet_constraints(job: dict, group: dict, node_value: Callable[[str], str | None],
                      host_volume: Callable[[dict, dict], dict | None]) -> str:
    """The first constraint of the job or group (or its tasks) a node does not meet, as Nomad names it.

    ``node_value`` gives a constraint target's value on the node (None: not set), ``host_volume``
    the node's host volume for a group ``volume`` block (None: the node has none that fits)."""
    import re

    constraints = (job.get("Constraints") or []) + (group.get("Constraints") or [])
    for task in group.get("Tasks") or []:
        constraints += task.get("Constraints") or []
    for con in constraints:
        op = con.get("Operand") or "="
        left, right = node_value(con.get("LTarget", "")), con.get("RTarget", "")
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
    for vol in (group.get("Volumes") or {}).values():
        if vol.get("Type") == "host" and host_volume(job, vol) is None:
            return "missing compatible host volumes"  # Nomad's FilterConstraintHostVolumes
    return ""


def find_host_volume(job: dict, vol: dict, static: dict[str, dict], dynamic: Any, node_id: str) -> dict | None:
    """A node's host volume for a group ``volume`` block of type host: {"path", "read_only"}, or None.

    A static ``client { host_volume }`` (``static``: name -> {"path", "read_only"}) or a dynamic host
    volume (``dynamic``: the API objects) of the job's namespace on the node, by name; a read-only host
    volume only serves a read-only request (Nomad's checker)."""
    source = vol.get("Source") or ""
    found = static.get(source)
    if found is None:
        matching = [v for v in dynamic if v["Name"] == source and v["Namespace"] == job["Namespace"] and
                    v["NodeID"] == node_id and v.get("State") == "ready"]
        if matching:
            found = {"path": matching[0]["HostPath"], "read_only": False}
    if found is None or (found.get("read_only") and not vol.get("ReadOnly")):
        return None
    return found
