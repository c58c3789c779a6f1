"""The Nomad HTTP API simulator: state and routes (Nomad 1.10 behaviour).

Test knobs live outside ``/v1`` under ``/_sim/`` (and as methods on
:class:`NomadSim`): the outcome of new allocations (``healthy``, ``failed``,
``pending``) globally or per job, and the delay before they settle.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import threading
import time
import uuid
from typing import Any

from ..base import App, HTTPError, Request, Response
from . import jobs as jobmod
from . import jobspec

VERSION = "1.10.5"
NOT_FOUND_JOB = "job not found"
# A client node without a heartbeat for this long is down (Nomad: heartbeat TTL plus grace).
NODE_DOWN_SECONDS = 15
# What a client agent says of its node (api/nodes.go Node fields) when it registers.
NODE_FIELDS = ("ID", "Name", "Datacenter", "NodeClass", "NodePool", "HTTPAddr", "Attributes", "Meta", "Drivers",
               "HostVolumes", "HostVolumesDir")


def _now_ns() -> int:
    return time.time_ns()


class NomadSim(App):
    def __init__(self, acl_enabled: bool = False, region: str = "global", datacenter: str = "dc1",
                 node_name: str = "sim-node", vault_default_identity: bool = True, data_dir: str | None = None,
                 settle_seconds: float = 0.3):
        super().__init__()
        self.lock = threading.RLock()
        self.acl_enabled = acl_enabled
        self.region = region
        self.datacenter = datacenter
        self.node_name = node_name
        self.vault_default_identity = vault_default_identity
        self.data_dir = data_dir
        self.settle_seconds = settle_seconds
        self.node_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, node_name))
        self.default_outcome = "healthy"
        self.job_outcomes: dict[str, str] = {}
        self.index = 10
        self.jobs: dict[tuple[str, str], list[dict]] = {}  # (ns, id) -> versions, newest last
        self.evals: dict[str, dict] = {}
        self.deployments: dict[str, dict] = {}
        self.allocs: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.acl_bootstrapped = False
        self.variables: dict[tuple[str, str], dict] = {}
        self.namespaces: dict[str, dict] = {"default": self._ns_obj("default", "Default shared namespace")}
        self.host_volumes: dict[str, dict] = {}
        self.nodes: dict[str, dict] = {}  # client nodes registered by client-only agents (cluster.py)
        # cluster.py: a ServerRouter (a server of several) or a ClientAgent (a client-only agent);
        # identity_signer: who signs workload identities when it is not this agent (a client-only one)
        self.router: Any = None
        self.identity_signer: Any = None
        self._periodic_seen: dict = {}
        self._periodic_stop = threading.Event()
        self.runner: Any = None  # a client.Runner when allocations run for real (attach_runner)
        self._signing_key: Any = None
        self._load()
        self._routes()

    # ---- the client: allocations run for real -----------------------------------
    def attach_runner(self, runner: Any) -> None:
        """Run allocations of the jobs ``runner`` handles for real (see client.py).

        Allocations that were running before a restart are re-attached: their tasks'
        processes and containers are watched again (Nomad's client does the same). One
        whose tasks are gone is marked lost and placed again."""
        with self.lock:
            self.runner = runner
            for alloc in list(self.allocs.values()):
                if alloc.get("_outcome") == "real" and alloc["DesiredStatus"] == "run" and \
                        alloc["ClientStatus"] in ("pending", "running"):
                    # a client-only agent keeps the job an allocation was placed for in it (cluster.py)
                    job = self._get_job(alloc["Namespace"], alloc["JobID"]) or alloc.get("_job")
                    if job is not None and alloc["ClientStatus"] == "running" and runner.reattach(alloc, job):
                        continue
                    alloc["ClientStatus"], alloc["ClientDescription"] = "lost", "alloc is lost since its node restarted"
                    job = self._get_job(alloc["Namespace"], alloc["JobID"])
                    if job is not None and not job.get("Stop"):
                        self._evaluate(job, "node-update")

    def _key(self) -> Any:
        """The agent's workload identity signing key (RSA, RS256 like Nomad's keyring), kept in the data dir."""
        if self._signing_key is None:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            path = os.path.join(self.data_dir, "sim-keyring.pem") if self.data_dir else None
            if path and os.path.exists(path):
                with open(path, "rb") as fh:
                    self._signing_key = serialization.load_pem_private_key(fh.read(), None)
            else:
                self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                if path:
                    os.makedirs(self.data_dir, exist_ok=True)
                    with open(path, "wb") as fh:
                        fh.write(self._signing_key.private_bytes(serialization.Encoding.PEM,
                                                                 serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption()))
                    os.chmod(path, 0o600)
        return self._signing_key

    def _key_id(self) -> str:
        from cryptography.hazmat.primitives import serialization

        der = self._key().public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
        return str(uuid.uuid5(uuid.NAMESPACE_OID, der.hex()))

    def sign_identity(self, job: dict, group: dict, task: dict, alloc_id: str, identity: dict) -> str:
        """A workload identity JWT with Nomad 1.10's claims, signed RS256 with the agent's key."""
        import jwt as pyjwt

        if self.identity_signer is not None:
            return self.identity_signer(job, group, task, alloc_id, identity)

        now = int(time.time())
        ttl = int((identity.get("TTL") or 0) / 10**9) or 3600
        claims = {"nomad_namespace": job["Namespace"], "nomad_job_id": job.get("ParentID") or job["ID"],
                  "nomad_allocation_id": alloc_id, "nomad_task": task["Name"],
                  "sub": "%s:%s:%s:%s:%s:%s" % (self.region, job["Namespace"], job.get("ParentID") or job["ID"],
                                                group["Name"], task["Name"], identity.get("Name", "default")),
                  "aud": identity.get("Audience") or ["nomad.io"], "iat": now, "nbf": now, "exp": now + ttl,
                  "jti": str(uuid.uuid4())}
        return pyjwt.encode(claims, self._key(), algorithm="RS256", headers={"kid": self._key_id()})

    # ---- plumbing ---------------------------------------------------------
    def error_response(self, status: int, body: Any) -> Response:
        return Response(status, body if isinstance(body, str) else json.dumps(body))

    def _next(self) -> int:
        self.index += 1
        return self.index

    def _ns_obj(self, name: str, desc: str = "") -> dict:
        idx = self.index if hasattr(self, "index") else 1
        return {"Name": name, "Description": desc, "Quota": "", "Meta": None, "Capabilities": None,
                "NodePoolConfiguration": None, "VaultConfiguration": None, "ConsulConfiguration": None,
                "CreateIndex": idx, "ModifyIndex": idx}

    def _state_file(self) -> str | None:
        return os.path.join(self.data_dir, "sim-state.json") if self.data_dir else None

    def _save(self) -> None:
        path = self._state_file()
        if not path:
            return
        state = self._state()
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
        os.replace(tmp, path)

    def _load(self) -> None:
        path = self._state_file()
        if not path or not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
        self._apply_state(state)

    def dispatch(self, request: Request) -> Response:
        if self.router is not None:  # a follower or a client-only agent forwards (cluster.py)
            forwarded = self.router.route(request)
            if forwarded is not None:
                return forwarded
        with self.lock:
            if request.path.startswith("/v1/"):
                try:
                    self._check_acl(request)
                except HTTPError as exc:
                    return self.error_response(exc.status, exc.body)
            response = super().dispatch(request)
            if request.method != "GET" and response.status < 300:
                self._save()
            response.headers.setdefault("X-Nomad-Index", str(self.index))
            return response

    # ---- ACL --------------------------------------------------------------
    _OPEN = ("/v1/status/leader", "/v1/status/peers", "/v1/acl/bootstrap", "/v1/agent/health")

    def _token(self, request: Request) -> str:
        tok = request.header("x-nomad-token") or ""
        auth = request.header("authorization") or ""
        if not tok and auth.lower().startswith("bearer "):
            tok = auth[7:].strip()
        return tok

    def _check_acl(self, request: Request) -> None:
        if not self.acl_enabled or request.path in self._OPEN or request.path.startswith("/v1/sim/"):
            return  # /v1/sim/: the node's secret is checked by the handler (_node_of)
        secret = self._token(request)
        if not secret:
            raise HTTPError(403, "Permission denied")
        token = self.tokens.get(secret)
        if token is None and self.router is not None:  # tokens live on the leader
            token = self.router.resolve_token(secret)
        if token is None:
            raise HTTPError(403, "ACL token not found")
        if token["Type"] != "management":
            raise HTTPError(403, "Permission denied")

    # ---- helpers ----------------------------------------------------------
    @staticmethod
    def _ns(request: Request) -> str:
        ns = request.query.get("namespace") or request.header("x-nomad-namespace") or "default"
        return "default" if ns == "*" else ns

    def _get_job(self, ns: str, job_id: str) -> dict | None:
        versions = self.jobs.get((ns, job_id))
        return versions[-1] if versions else None

    def _require_ns(self, ns: str) -> None:
        if ns not in self.namespaces:
            raise HTTPError(400, 'job "namespace" doesn\'t exist: %s' % ns)

    def _outcome(self, job_id: str, job: dict) -> tuple[str, str]:
        """(outcome, failure message) for a new allocation of ``job``."""
        for group in job.get("TaskGroups") or []:
            for task in group.get("Tasks") or []:
                if task.get("Driver") == "docker" and (task.get("Config") or {}).get("port_map"):
                    return "failed", ("Failed to create container configuration for image \"%s\": 'port_map' "
                                      "cannot map group network ports, use 'ports' instead"
                                      % (task.get("Config") or {}).get("image", ""))
        outcome = self.job_outcomes.get(job_id.split("/")[0], self.default_outcome)
        return outcome, "Simulated task failure (knob)"

    # ---- lazy clock ---------------------------------------------------------
    def _settle(self) -> None:
        """Move allocations and deployments along once their settle time has passed."""
        now = time.time()
        for alloc in self.allocs.values():
            if alloc["DesiredStatus"] != "run" or alloc["ClientStatus"] not in ("pending", "running"):
                continue
            if now < alloc["_settle_at"]:
                continue
            outcome = alloc["_outcome"]
            if outcome == "healthy" and alloc["ClientStatus"] == "pending":
                batch = alloc["_batch"]
                alloc["ClientStatus"] = "complete" if batch else "running"
                for ts in alloc["TaskStates"].values():
                    ts["State"] = "dead" if batch else "running"
                    ts["StartedAt"] = ts["StartedAt"] or _iso(now)
                    ts["Events"].append(_event("Started", "Task started by client"))
                    if batch:
                        ts["Events"].append(_event("Terminated", "Exit Code: 0"))
                if alloc["DeploymentID"]:
                    alloc["DeploymentStatus"] = {"Healthy": True, "Timestamp": _iso(now), "Canary": False,
                                                 "ModifyIndex": self._next()}
            elif outcome == "failed" and alloc["ClientStatus"] == "pending":
                alloc["ClientStatus"] = "failed"
                for ts in alloc["TaskStates"].values():
                    ts["State"] = "dead"
                    ts["Failed"] = True
                    ts["Events"].append(_event("Driver Failure", alloc["_failure"], driver_error=alloc["_failure"]))
                    ts["Events"].append(_event("Not Restarting", "Error was unrecoverable", fails_task=True))
                if alloc["DeploymentID"]:
                    alloc["DeploymentStatus"] = {"Healthy": False, "Timestamp": _iso(now), "Canary": False,
                                                 "ModifyIndex": self._next()}
            alloc["ModifyIndex"] = self._next()
        for dep in self.deployments.values():
            if dep["Status"] != "running":
                continue
            allocs = [a for a in self.allocs.values() if a["DeploymentID"] == dep["ID"]]
            for name, state in dep["TaskGroups"].items():
                group_allocs = [a for a in allocs if a["TaskGroup"] == name]
                state["PlacedAllocs"] = len(group_allocs)
                state["HealthyAllocs"] = sum(1 for a in group_allocs if (a["DeploymentStatus"] or {}).get("Healthy"))
                state["UnhealthyAllocs"] = sum(
                    1 for a in group_allocs if a["DeploymentStatus"] and not a["DeploymentStatus"]["Healthy"])
            if any(s["UnhealthyAllocs"] for s in dep["TaskGroups"].values()):
                dep["Status"], dep["StatusDescription"] = "failed", "Failed due to unhealthy allocations"
                dep["ModifyIndex"] = self._next()
            elif all(s["HealthyAllocs"] >= s["DesiredTotal"] for s in dep["TaskGroups"].values()):
                dep["Status"], dep["StatusDescription"] = "successful", "Deployment completed successfully"
                dep["ModifyIndex"] = self._next()
                job = self._get_job(dep["Namespace"], dep["JobID"])
                if job and job["Version"] == dep["JobVersion"]:
                    job["Stable"] = True
        for versions in self.jobs.values():
            job = versions[-1]
            job["Status"] = self._job_status(job)

    def _job_status(self, job: dict) -> str:
        if job.get("Periodic") or job.get("ParameterizedJob"):
            return "dead" if job.get("Stop") else "running"
        allocs = [a for a in self.allocs.values() if a["JobID"] == job["ID"] and a["Namespace"] == job["Namespace"]]
        if any(a["ClientStatus"] in ("running", "pending") and a["DesiredStatus"] == "run" for a in allocs):
            return "running"
        if not allocs and not job.get("Stop"):
            return "pending"
        return "dead"

    # ---- job lifecycle ------------------------------------------------------
    def _register(self, job: dict, ns: str, enforce: bool = False, modify_index: int = 0) -> dict:
        job = jobmod.admit(jobmod.canonicalize(job), self.vault_default_identity)
        job["Namespace"] = ns if job.get("Namespace") in (None, "", "default") and ns else job["Namespace"]
        ns = job["Namespace"]
        self._require_ns(ns)
        errors = jobmod.validate(job, self.vault_default_identity)
        if errors:
            raise HTTPError(500, jobmod.multierror(errors))
        existing = self._get_job(ns, job["ID"])
        if enforce:
            prefix = "Enforcing job modify index"
            if existing is not None and modify_index == 0:
                raise HTTPError(500, "%s 0: job already exists" % prefix)
            if existing is not None and modify_index != existing["JobModifyIndex"]:
                raise HTTPError(500, "%s %d: job exists with conflicting job modify index: %d"
                                % (prefix, modify_index, existing["JobModifyIndex"]))
            if existing is None and modify_index != 0:
                raise HTTPError(500, "%s %d: job does not exist" % (prefix, modify_index))
        warnings = ""
        changed = existing is None or existing.get("Stop") or jobmod.job_diff(existing, job)["Type"] != "None"
        idx = self._next()
        if changed:
            job.update({"Version": (existing["Version"] + 1) if existing else 0, "Stable": False, "Stop": False,
                        "Status": "pending", "StatusDescription": "", "CreateIndex": existing["CreateIndex"]
                        if existing else idx, "ModifyIndex": idx, "JobModifyIndex": idx, "SubmitTime": _now_ns(),
                        "Dispatched": False, "ParentID": job.get("ParentID", "")})
            self.jobs.setdefault((ns, job["ID"]), []).append(job)
            del self.jobs[(ns, job["ID"])][:-6]
            stored = job
        else:
            stored = existing
        eval_id = ""
        if not (stored.get("Periodic") or stored.get("ParameterizedJob")):
            eval_id = self._evaluate(stored, "job-register", place=changed)
        return {"EvalID": eval_id, "EvalCreateIndex": idx if eval_id else 0, "JobModifyIndex": stored["JobModifyIndex"],
                "Warnings": warnings, "Index": idx, "LastContact": 0, "KnownLeader": False}

    def _evaluate(self, job: dict, trigger: str, place: bool = True) -> str:
        idx = self._next()
        ev = {"ID": str(uuid.uuid4()), "Namespace": job["Namespace"], "Priority": job["Priority"],
              "Type": job["Type"], "TriggeredBy": trigger, "JobID": job["ID"], "JobModifyIndex": job["JobModifyIndex"],
              "Status": "complete", "StatusDescription": "", "DeploymentID": "", "CreateIndex": idx,
              "ModifyIndex": idx, "CreateTime": _now_ns(), "ModifyTime": _now_ns()}
        self.evals[ev["ID"]] = ev
        if not place:
            return ev["ID"]
        for alloc in self.allocs.values():
            if alloc["JobID"] == job["ID"] and alloc["Namespace"] == job["Namespace"] and \
                    alloc["DesiredStatus"] == "run":
                alloc["DesiredStatus"] = "stop"
                if alloc["ClientStatus"] in ("pending", "running"):
                    alloc["ClientStatus"] = "complete"
                alloc["ModifyIndex"] = idx
                if self.runner is not None and alloc.get("_outcome") == "real" and not alloc.get("_remote"):
                    self.runner.stop(alloc["ID"])
        for dep in self.deployments.values():
            if dep["JobID"] == job["ID"] and dep["Namespace"] == job["Namespace"] and dep["Status"] == "running":
                dep["Status"], dep["StatusDescription"] = "cancelled", "Cancelled due to newer version of job"
        if job.get("Stop"):
            return ev["ID"]
        dep_id = ""
        if job["Type"] == "service":
            dep_id = str(uuid.uuid4())
            ev["DeploymentID"] = dep_id
            self.deployments[dep_id] = {
                "ID": dep_id, "Namespace": job["Namespace"], "JobID": job["ID"], "JobVersion": job["Version"],
                "JobModifyIndex": job["JobModifyIndex"], "JobSpecModifyIndex": job["JobModifyIndex"],
                "JobCreateIndex": job["CreateIndex"], "IsMultiregion": False, "Status": "running",
                "StatusDescription": "Deployment is running",
                "TaskGroups": {g["Name"]: {"AutoRevert": g["Update"]["AutoRevert"], "AutoPromote": False,
                                           "ProgressDeadline": g["Update"]["ProgressDeadline"],
                                           "RequireProgressBy": None, "Promoted": False, "PlacedCanaries": None,
                                           "DesiredCanaries": 0, "DesiredTotal": g["Count"], "PlacedAllocs": 0,
                                           "HealthyAllocs": 0, "UnhealthyAllocs": 0}
                               for g in job["TaskGroups"]},
                "EvalPriority": job["Priority"], "CreateIndex": idx, "ModifyIndex": idx,
                "CreateTime": _now_ns(), "ModifyTime": _now_ns()}
        outcome, failure = self._outcome(job["ID"], job)
        real = self.runner is not None and self.runner.handles(job)
        failed_groups = {}
        for group in job["TaskGroups"]:
            if self.runner is None and (self.nodes or self.router is not None):
                # client nodes of client-only agents (cluster.py): placed there, run by their agents
                failed = self._place_on_nodes(job, group, ev["ID"], dep_id, idx)
                if failed:
                    failed_groups[group["Name"]] = failed
                continue
            if self.runner is not None:
                unmet = self.runner.unmet_constraints(job, group)
                if unmet:  # this one node is filtered out: nothing placed, a blocked evaluation
                    failed_groups[group["Name"]] = {
                        "NodesEvaluated": 1, "NodesFiltered": 1, "NodesInPool": 1, "NodesAvailable": {
                            self.datacenter: 1}, "ClassFiltered": None, "ConstraintFiltered": {unmet: 1},
                        "NodesExhausted": 0, "ClassExhausted": None, "DimensionExhausted": None,
                        "QuotaExhausted": None, "ResourcesExhausted": None, "Scores": None, "ScoreMetaData": None,
                        "AllocationTime": 0,
                        "CoalescedFailures": group["Count"] - 1}
                    continue
            # One client node: a system job places one allocation per group on it.
            count = 1 if job["Type"] in ("system", "sysbatch") else group["Count"]
            for i in range(count):
                aid = str(uuid.uuid4())
                self.allocs[aid] = self._new_alloc(aid, job, group, i, ev["ID"], dep_id, idx, self.node_id,
                                                   self.node_name)
                self.allocs[aid].update({"_settle_at": time.time() + self.settle_seconds, "_outcome": outcome,
                                         "_failure": failure})
                if real:
                    self.runner.start(self.allocs[aid], copy.deepcopy(job))
        if failed_groups:
            blocked = dict(ev, ID=str(uuid.uuid4()), Status="blocked", TriggeredBy=trigger,
                           StatusDescription="created to place remaining allocations", FailedTGAllocs=None,
                           PreviousEval=ev["ID"])
            self.evals[blocked["ID"]] = blocked
            ev["FailedTGAllocs"], ev["BlockedEval"] = failed_groups, blocked["ID"]
        return ev["ID"]

    def _new_alloc(self, aid: str, job: dict, group: dict, index: int, eval_id: str, dep_id: str, idx: int,
                   node_id: str, node_name: str) -> dict:
        return {
            "ID": aid, "EvalID": eval_id, "Name": "%s.%s[%d]" % (job["ID"], group["Name"], index),
            "Namespace": job["Namespace"], "NodeID": node_id, "NodeName": node_name,
            "JobID": job["ID"], "JobType": job["Type"], "JobVersion": job["Version"],
            "TaskGroup": group["Name"], "DesiredStatus": "run", "DesiredDescription": "",
            "ClientStatus": "pending", "ClientDescription": "", "DeploymentID": dep_id,
            "DeploymentStatus": None, "FollowupEvalID": "", "RescheduleTracker": None,
            "PreemptedAllocations": None, "PreemptedByAllocation": "",
            "TaskStates": {t["Name"]: {"State": "pending", "Failed": False, "Restarts": 0,
                                       "LastRestart": None, "StartedAt": None, "FinishedAt": None,
                                       "Events": [_event("Received", "Task received by client")]}
                           for t in group["Tasks"]},
            "CreateIndex": idx, "ModifyIndex": idx, "AllocModifyIndex": idx,
            "CreateTime": _now_ns(), "ModifyTime": _now_ns(), "_settle_at": 0, "_outcome": "real", "_failure": "",
            "_batch": job["Type"] in ("batch", "sysbatch")}

    # ---- client nodes (client-only agents, cluster.py) ------------------------
    def _node_status(self, node: dict) -> str:
        """ready while the node heartbeats (Nomad: down once its heartbeat TTL and grace have passed)."""
        return "ready" if time.time() - node.get("_last_seen", 0) < NODE_DOWN_SECONDS else "down"

    def _node_value(self, node: dict, target: str) -> str | None:
        import re

        match = re.fullmatch(r"\$\{(.+)\}", target or "")
        if not match:
            return target
        name = match.group(1)
        if name.startswith("meta."):
            return (node.get("Meta") or {}).get(name[5:])
        if name.startswith("attr."):
            return (node.get("Attributes") or {}).get(name[5:])
        known = {"node.datacenter": node["Datacenter"], "node.unique.name": node["Name"],
                 "node.unique.id": node["ID"], "node.region": self.region, "node.class": node.get("NodeClass", ""),
                 "node.pool": node.get("NodePool") or "default"}
        return known.get(name, "")

    def _node_unmet(self, node: dict, job: dict, group: dict) -> str:
        """Why ``node`` cannot take ``group`` (Nomad's filter reason), or ""."""
        from .client import find_host_volume, unmet_constraints

        drivers = node.get("Drivers") or {}
        if any(not (drivers.get(t.get("Driver")) or {}).get("Healthy") for t in group.get("Tasks") or []):
            return "missing drivers"
        static = {name: {"path": v["Path"], "read_only": v["ReadOnly"]}
                  for name, v in (node.get("HostVolumes") or {}).items()}
        dynamic = self.host_volumes.values()
        return unmet_constraints(job, group, lambda target: self._node_value(node, target),
                                 lambda j, vol: find_host_volume(j, vol, static, dynamic, node["ID"]))

    def _place_on_nodes(self, job: dict, group: dict, eval_id: str, dep_id: str, idx: int) -> dict | None:
        """Place ``group``'s allocations on the ready client nodes that fit (round robin; a system job:
        one per node). The FailedTGAllocs metrics when none fits, else None."""
        import fnmatch

        pool = [n for n in sorted(self.nodes.values(), key=lambda n: n["Name"]) if self._node_status(n) == "ready"
                and n.get("SchedulingEligibility", "eligible") == "eligible"]
        in_dc = [n for n in pool if any(fnmatch.fnmatchcase(n["Datacenter"], dc) for dc in job["Datacenters"])]
        filtered: dict[str, int] = {}
        fits = []
        for node in in_dc:
            reason = self._node_unmet(node, job, group)
            if reason:
                filtered[reason] = filtered.get(reason, 0) + 1
            else:
                fits.append(node)
        if not fits:
            return {"NodesEvaluated": len(in_dc), "NodesFiltered": len(in_dc), "NodesInPool": len(pool),
                    "NodesAvailable": {dc: sum(1 for n in in_dc if n["Datacenter"] == dc)
                                       for dc in {n["Datacenter"] for n in pool}} or {self.datacenter: 0},
                    "ClassFiltered": None, "ConstraintFiltered": filtered or None, "NodesExhausted": 0,
                    "ClassExhausted": None, "DimensionExhausted": None, "QuotaExhausted": None,
                    "ResourcesExhausted": None, "Scores": None, "ScoreMetaData": None, "AllocationTime": 0,
                    "CoalescedFailures": max(group["Count"] - 1, 0)}
        system = job["Type"] in ("system", "sysbatch")
        targets = fits if system else [fits[i % len(fits)] for i in range(group["Count"])]
        for i, node in enumerate(targets):
            aid = str(uuid.uuid4())
            self.allocs[aid] = self._new_alloc(aid, job, group, i, eval_id, dep_id, idx, node["ID"], node["Name"])
            self.allocs[aid].update({"_outcome": "real", "_settle_at": 0, "_remote": True})
        return None

    def _node_of(self, request: Request, node_id: str | None = None) -> dict:
        """The node whose secret the request carries (the client agent's credential), or 403."""
        secret = self._token(request)
        node = next((n for n in self.nodes.values() if n["SecretID"] == secret), None) if secret else None
        if node is None or (node_id is not None and node["ID"] != node_id):
            raise HTTPError(403, "Permission denied")
        return node

    def sim_node_register(self, request: Request) -> Response:
        """The stand-in for the Node.Register / Node.UpdateStatus RPCs: a client node registers and
        heartbeats (a known node must present the SecretID it registered with)."""
        body = request.json() or {}
        for key in ("ID", "Name", "Datacenter", "SecretID"):
            if not body.get(key):
                raise HTTPError(400, "missing node %s" % key)
        node = self.nodes.get(body["ID"])
        if node is not None and node["SecretID"] != body["SecretID"]:
            raise HTTPError(403, "node secret ID does not match. Not registering node.")
        now = time.time()
        if node is None or any(node.get(k) != body.get(k) for k in NODE_FIELDS if k in body) or \
                node.get("Status") != "ready":
            idx = self._next()
            fresh = {k: body.get(k) for k in NODE_FIELDS}
            fresh.update({"ID": body["ID"], "SecretID": body["SecretID"], "Status": "ready",
                          "StatusDescription": "", "StatusUpdatedAt": int(now),
                          "SchedulingEligibility": (node or {}).get("SchedulingEligibility", "eligible"),
                          "CreateIndex": node["CreateIndex"] if node else idx, "ModifyIndex": idx})
            node = self.nodes[body["ID"]] = fresh
            node["_last_seen"] = now
            self._unblock("node-update")
        node["_last_seen"] = now
        return Response(200, {"HeartbeatTTL": NODE_DOWN_SECONDS * 10**9 // 2, "Index": node["ModifyIndex"]})

    def _unblock(self, trigger: str) -> None:
        """A node joined or changed (or a host volume appeared on one): the blocked evaluations of the
        client nodes' jobs are evaluated again (Nomad's blocked-evals tracker). Here the whole job is
        evaluated again: its placed allocations are replaced too (README)."""
        if self.runner is not None:
            return
        for ev in list(self.evals.values()):
            if ev["Status"] != "blocked":
                continue
            ev["Status"], ev["StatusDescription"] = "complete", "unblocked by a node update"
            job = self._get_job(ev["Namespace"], ev["JobID"])
            if job is not None and not job.get("Stop") and job["JobModifyIndex"] == ev["JobModifyIndex"]:
                self._evaluate(job, trigger)

    def _job_version(self, ns: str, job_id: str, version: int) -> dict | None:
        versions = self.jobs.get((ns, job_id)) or []
        return next((v for v in versions if v["Version"] == version), versions[-1] if versions else None)

    def sim_node_allocs(self, request: Request) -> Response:
        """The stand-in for Node.GetClientAllocs: the node's allocations (each with the job version it was
        placed for while it should run) and the dynamic host volumes on the node."""
        node = self._node_of(request, request.params["id"])
        node["_last_seen"] = time.time()
        allocs = []
        for alloc in self.allocs.values():
            if alloc["NodeID"] != node["ID"]:
                continue
            out = _public(alloc)
            if alloc["DesiredStatus"] == "run" and alloc["ClientStatus"] == "pending":
                out["Job"] = self._job_version(alloc["Namespace"], alloc["JobID"], alloc["JobVersion"])
            allocs.append(out)
        return Response(200, {"Allocs": allocs, "Index": self.index,
                              "HostVolumes": [v for v in self.host_volumes.values() if v["NodeID"] == node["ID"]]})

    def sim_node_update_allocs(self, request: Request) -> Response:
        """The stand-in for Node.UpdateAlloc: the client state of the node's allocations."""
        node = self._node_of(request, request.params["id"])
        for update in (request.json() or {}).get("Allocs") or []:
            alloc = self.allocs.get(update.get("ID", ""))
            if alloc is None or alloc["NodeID"] != node["ID"]:
                continue
            for key in ("ClientStatus", "ClientDescription", "TaskStates", "DeploymentStatus", "AllocatedResources"):
                if key in update and update[key] is not None:
                    alloc[key] = update[key]
            if alloc["DesiredStatus"] == "stop" and alloc["ClientStatus"] in ("pending", "running"):
                alloc["ClientStatus"] = "complete"  # as the server marked it when it stopped it
            if alloc.get("DeploymentStatus"):
                alloc["DeploymentStatus"]["ModifyIndex"] = self._next()
            alloc["ModifyIndex"] = alloc["AllocModifyIndex"] = self._next()
        self._settle()
        return Response(200, {"Index": self.index})

    def sim_identity_sign(self, request: Request) -> Response:
        """Sign a workload identity for a task of an allocation on the calling node, with this server's key."""
        node = self._node_of(request)
        body = request.json() or {}
        alloc = self.allocs.get(body.get("AllocID", ""))
        if alloc is None or alloc["NodeID"] != node["ID"]:
            raise HTTPError(404, "alloc not found")
        job = self._job_version(alloc["Namespace"], alloc["JobID"], alloc["JobVersion"])
        group = next((g for g in (job or {}).get("TaskGroups") or [] if g["Name"] == alloc["TaskGroup"]), None)
        task = next((t for t in (group or {}).get("Tasks") or [] if t["Name"] == body.get("Task")), None)
        if task is None:
            raise HTTPError(404, "task not found")
        return Response(200, {"JWT": self.sign_identity(job, group, task, alloc["ID"], body.get("Identity") or {})})

    def nodes_list(self, request: Request) -> Response:
        prefix = request.query.get("prefix", "")
        out = []
        for node in sorted(self.nodes.values(), key=lambda n: n["ID"]):
            if node["ID"].startswith(prefix):
                out.append({"Address": node.get("HTTPAddr", "").rsplit(":", 1)[0], "ID": node["ID"],
                            "Attributes": None, "Datacenter": node["Datacenter"], "Name": node["Name"],
                            "NodeClass": node.get("NodeClass", ""), "NodePool": node.get("NodePool") or "default",
                            "Version": VERSION, "Drain": False, "SchedulingEligibility": node["SchedulingEligibility"],
                            "Status": self._node_status(node), "StatusDescription": "",
                            "Drivers": node.get("Drivers"), "HostVolumes": node.get("HostVolumes"),
                            "NodeResources": None, "ReservedResources": None, "LastDrain": None,
                            "CreateIndex": node["CreateIndex"], "ModifyIndex": node["ModifyIndex"]})
        return Response(200, out)

    def _node_or_404(self, request: Request) -> dict:
        node_id = request.params["id"]
        matches = [n for n in self.nodes.values() if n["ID"].startswith(node_id)] if len(node_id) < 36 else \
            [self.nodes[node_id]] if node_id in self.nodes else []
        if len(matches) != 1:
            raise HTTPError(404, "node not found")
        return matches[0]

    def node_read(self, request: Request) -> Response:
        node = self._node_or_404(request)
        out = {k: v for k, v in node.items() if not k.startswith("_")}
        out.update({"SecretID": "", "Status": self._node_status(node), "Drain": False, "DrainStrategy": None,
                    "LastDrain": None, "Events": None, "Links": None, "CSIControllerPlugins": None,
                    "CSINodePlugins": None, "HostNetworks": None, "Resources": None, "Reserved": None,
                    "NodeResources": None, "ReservedResources": None, "TLSEnabled": False, "CgroupParent": ""})
        return Response(200, out)

    def node_allocations(self, request: Request) -> Response:
        self._settle()
        node = self._node_or_404(request)
        return Response(200, [_public(a) for a in self.allocs.values() if a["NodeID"] == node["ID"]])

    # ---- routes -------------------------------------------------------------
    def _routes(self) -> None:
        r = self.add_route
        r("GET", "/v1/status/leader", self.status_leader)
        r("GET", "/v1/status/peers", self.status_peers)
        r("GET", "/v1/nodes", self.nodes_list)
        r("GET", r"/v1/node/(?P<id>[^/]+)", self.node_read)
        r("GET", r"/v1/node/(?P<id>[^/]+)/allocations", self.node_allocations)
        r("GET", "/v1/sim/server", lambda q: Response(200, self.server_info()))
        r("PUT", "/v1/sim/node/register", self.sim_node_register)
        r("GET", r"/v1/sim/node/(?P<id>[^/]+)/allocs", self.sim_node_allocs)
        r("PUT", r"/v1/sim/node/(?P<id>[^/]+)/allocs", self.sim_node_update_allocs)
        r("POST", "/v1/sim/identity/sign", self.sim_identity_sign)
        r("GET", "/v1/agent/self", self.agent_self)
        r("GET", "/v1/agent/health", self.agent_health)
        r("GET", "/v1/agent/members", self.agent_members)
        r("GET", "/.well-known/jwks.json", self.jwks)
        r("GET", "/v1/operator/raft/configuration", self.raft_configuration)
        r("GET", "/v1/operator/snapshot", self.snapshot_save)
        r("PUT", "/v1/operator/snapshot", self.snapshot_restore)
        r("POST", "/v1/operator/snapshot", self.snapshot_restore)
        r("POST", "/v1/acl/bootstrap", self.acl_bootstrap)
        r("PUT", "/v1/acl/bootstrap", self.acl_bootstrap)
        r("GET", "/v1/acl/token/self", self.acl_token_self)
        r("GET", "/v1/jobs", self.jobs_list)
        r("PUT", "/v1/jobs", self.jobs_register)
        r("POST", "/v1/jobs", self.jobs_register)
        r("POST", "/v1/jobs/parse", self.jobs_parse)
        r("PUT", "/v1/jobs/parse", self.jobs_parse)
        r("GET", r"/v1/job/(?P<id>[^/]+)", self.job_read)
        r("PUT", r"/v1/job/(?P<id>[^/]+)", self.job_register)
        r("POST", r"/v1/job/(?P<id>[^/]+)", self.job_register)
        r("DELETE", r"/v1/job/(?P<id>[^/]+)", self.job_deregister)
        r("GET", r"/v1/job/(?P<id>[^/]+)/versions", self.job_versions)
        r("POST", r"/v1/job/(?P<id>[^/]+)/plan", self.job_plan)
        r("PUT", r"/v1/job/(?P<id>[^/]+)/plan", self.job_plan)
        r("GET", r"/v1/job/(?P<id>[^/]+)/allocations", self.job_allocations)
        r("GET", r"/v1/job/(?P<id>[^/]+)/evaluations", self.job_evaluations)
        r("GET", r"/v1/job/(?P<id>[^/]+)/deployments", self.job_deployments)
        r("GET", r"/v1/job/(?P<id>[^/]+)/deployment", self.job_deployment)
        r("GET", r"/v1/job/(?P<id>[^/]+)/summary", self.job_summary)
        r("POST", r"/v1/job/(?P<id>[^/]+)/periodic/force", self.job_periodic_force)
        r("PUT", r"/v1/job/(?P<id>[^/]+)/periodic/force", self.job_periodic_force)
        r("GET", "/v1/allocations", self.allocations_list)
        r("GET", r"/v1/allocation/(?P<id>[^/]+)", self.allocation_read)
        r("GET", r"/v1/evaluation/(?P<id>[^/]+)", self.evaluation_read)
        r("GET", "/v1/deployments", self.deployments_list)
        r("GET", r"/v1/deployment/(?P<id>[^/]+)", self.deployment_read)
        r("GET", "/v1/namespaces", self.namespaces_list)
        for m in ("PUT", "POST"):
            r(m, "/v1/namespace", self.namespace_write)
            r(m, r"/v1/namespace/(?P<name>[^/]+)", self.namespace_write)
            r(m, "/v1/volume/host/create", self.volume_create)
            r(m, "/v1/volume/host/register", self.volume_register)
            r(m, r"/v1/var/(?P<path>.+)", self.var_write)
        r("GET", r"/v1/namespace/(?P<name>[^/]+)", self.namespace_read)
        r("DELETE", r"/v1/namespace/(?P<name>[^/]+)", self.namespace_delete)
        r("GET", "/v1/volumes", self.volumes_list)
        r("GET", r"/v1/volume/host/(?P<id>[^/]+)", self.volume_read)
        r("DELETE", r"/v1/volume/host/(?P<id>[^/]+)", self.volume_delete)
        r("GET", "/v1/vars", self.vars_list)
        r("GET", r"/v1/var/(?P<path>.+)", self.var_read)
        r("DELETE", r"/v1/var/(?P<path>.+)", self.var_delete)
        r("PUT", "/_sim/outcome", self.sim_outcome)
        r("PUT", r"/_sim/outcome/(?P<id>[^/]+)", self.sim_outcome)
        r("GET", "/_sim/requests", lambda q: Response(200, {"note": "the request log lives in SimServer"}))

    # agent / status / acl
    def agent_self(self, request: Request) -> Response:
        body = {
            "config": {"Region": self.region, "Datacenter": self.datacenter, "NodeName": self.node_name,
                       "Version": {"Version": VERSION, "Prerelease": "", "Metadata": "", "Revision": "simulator"},
                       "ACL": {"Enabled": self.acl_enabled}, "Server": {"Enabled": True},
                       "Client": {"Enabled": True}, "DisableUpdateCheck": True},
            "member": {"Name": "%s.%s" % (self.node_name, self.region), "Addr": "127.0.0.1", "Port": 4648,
                       "Status": "alive", "Tags": {"region": self.region, "dc": self.datacenter, "build": VERSION,
                                                   "role": "nomad"}},
            "stats": {"nomad": {"leader": "true", "server": "true", "known_regions": "1"},
                      # as a real agent with client { enabled = true } (command/agent/agent.go Stats)
                      "client": {"node_id": self.node_id, "known_servers": "127.0.0.1:4647",
                                 "num_allocations": str(len(self.allocs)), "last_heartbeat": "0",
                                 "heartbeat_ttl": "10s"}}}
        return Response(200, body if self.router is None else self._cluster_self(body))

    def _cluster_self(self, body: dict) -> dict:
        """agent/self of a server of several or of a client-only agent (cluster.py)."""
        from .cluster import ClientAgent

        router = self.router
        if isinstance(router, ClientAgent):
            body["config"]["Server"]["Enabled"] = False
            body["member"] = {}
            del body["stats"]["nomad"]
            body["stats"]["client"].update({
                "known_servers": router.known_servers(),
                "last_heartbeat": "%.0fs" % (time.time() - router.last_heartbeat) if router.last_heartbeat else "0"})
            return body
        client = bool(((getattr(self, "agent_config", None) or {}).get("client") or [{}])[0].get("enabled"))
        body["config"]["Client"]["Enabled"] = client
        body["member"]["Addr"] = router.advertise
        body["stats"]["nomad"]["leader"] = "true" if router.is_leader else "false"
        body["stats"]["nomad"]["leader_addr"] = "%s:4647" % router.leader
        if not client:
            del body["stats"]["client"]
        return body

    def server_info(self) -> dict:
        """What a server says of itself to the others of its cluster (``GET /v1/sim/server``; no secrets)."""
        return {"ID": self.node_id, "Name": self.node_name, "Region": self.region, "Datacenter": self.datacenter,
                "Version": VERSION}

    def status_leader(self, request: Request) -> Response:
        return _json_response(self.router.status_leader() if self.router is not None else "127.0.0.1:4647")

    def status_peers(self, request: Request) -> Response:
        return Response(200, self.router.peers() if self.router is not None else ["127.0.0.1:4647"])

    def agent_health(self, request: Request) -> Response:
        """One section per role of this agent, as Nomad's HealthRequest (command/agent/agent_endpoint.go):
        ``?type=client`` or ``?type=server`` keeps one; an agent started from a configuration has the roles
        it enables (both with -dev), one made in a test is a server. The client always knows a server here."""
        cfg = getattr(self, "agent_config", None)
        if cfg is None:
            roles = ["server"]
        else:
            dev = bool(getattr(self, "agent_dev", False))
            roles = [r for r in ("client", "server") if dev or (cfg.get(r) or [{}])[0].get("enabled")]
        wanted = request.query.get("type")
        return Response(200, {r: {"ok": True, "message": "ok"} for r in roles if wanted in (None, "", r)})

    def agent_members(self, request: Request) -> Response:
        member = self.agent_self(request).body["member"]
        members = [member] if self.router is None else self.router.members()
        return Response(200, {"ServerName": self.node_name, "ServerRegion": self.region,
                              "ServerDC": self.datacenter, "Members": members})

    def _state(self) -> dict:
        return {"index": self.index, "jobs": [[list(k), v] for k, v in self.jobs.items()],
                "evals": self.evals, "deployments": self.deployments, "allocs": self.allocs,
                "tokens": self.tokens, "acl_bootstrapped": self.acl_bootstrapped,
                "variables": [[list(k), v] for k, v in self.variables.items()],
                "namespaces": self.namespaces, "host_volumes": self.host_volumes, "nodes": self.nodes}

    def raft_configuration(self, request: Request) -> Response:
        """One voter, the leader: this agent (RaftServer fields of the API description); the servers of
        a cluster (cluster.py), the fixed leader marked."""
        if self.router is not None:
            return Response(200, {"Index": self.index, "Servers": self.router.raft_servers()})
        return Response(200, {"Index": self.index, "Servers": [{
            "ID": self.node_id, "Node": "%s.%s" % (self.node_name, self.region), "Address": "127.0.0.1:4647",
            "Leader": True, "Voter": True, "RaftProtocol": "3"}]})

    def snapshot_save(self, request: Request) -> Response:
        """The server state as a gzipped archive (Nomad's is a gzipped tar of the raft snapshot)."""
        import gzip

        data = gzip.compress(json.dumps({"format": "nomad-sim-snapshot-1", "version": VERSION,
                                         "state": self._state()}).encode())
        return Response(200, data, {"Content-Type": "application/octet-stream", "X-Nomad-Index": str(self.index)})

    def snapshot_restore(self, request: Request) -> Response:
        import gzip

        try:
            state = json.loads(gzip.decompress(request.body))["state"]
        except (OSError, ValueError, KeyError, TypeError):
            raise HTTPError(500, "failed to read snapshot: gzip: invalid header") from None
        self._apply_state(state)
        return Response(200, None)

    def _apply_state(self, state: dict) -> None:
        self.index = state["index"]
        self.jobs = {tuple(k): v for k, v in state["jobs"]}
        self.evals, self.deployments, self.allocs = state["evals"], state["deployments"], state["allocs"]
        self.tokens, self.acl_bootstrapped = state["tokens"], state["acl_bootstrapped"]
        self.variables = {tuple(k): v for k, v in state["variables"]}
        self.namespaces, self.host_volumes = state["namespaces"], state["host_volumes"]
        self.nodes = state.get("nodes") or {}
        for node in self.nodes.values():  # a (re)started leader gives every node a fresh heartbeat grace
            node["_last_seen"] = time.time()

    def jwks(self, request: Request) -> Response:
        numbers = self._key().public_key().public_numbers()

        def b64(n: int) -> str:
            return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

        return Response(200, {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self._key_id(),
                                        "n": b64(numbers.n), "e": b64(numbers.e)}]})

    def acl_bootstrap(self, request: Request) -> Response:
        if not self.acl_enabled:
            raise HTTPError(400, "ACL support disabled")
        if self.acl_bootstrapped:
            raise HTTPError(400, "ACL bootstrap already done (reset index: %d)" % self.index)
        body = request.json() or {}
        idx = self._next()
        token = {"AccessorID": str(uuid.uuid4()), "SecretID": body.get("BootstrapSecret") or str(uuid.uuid4()),
                 "Name": "Bootstrap Token", "Type": "management", "Policies": None, "Roles": None, "Global": True,
                 "CreateTime": _iso(time.time()), "ExpirationTime": None, "ExpirationTTL": 0,
                 "CreateIndex": idx, "ModifyIndex": idx}
        self.tokens[token["SecretID"]] = token
        self.acl_bootstrapped = True
        return Response(200, token)

    def acl_token_self(self, request: Request) -> Response:
        if not self.acl_enabled:
            raise HTTPError(400, "ACL support disabled")
        token = self.tokens.get(self._token(request))
        if token is None and self.router is not None:
            token = self.router.resolve_token(self._token(request))
        return Response(200, token)

    # jobs
    def jobs_list(self, request: Request) -> Response:
        self._settle()
        prefix = request.query.get("prefix", "")
        all_ns = request.query.get("namespace") == "*"
        ns = self._ns(request)
        out = [_stub(v[-1], self) for (jns, jid), v in sorted(self.jobs.items())
               if jid.startswith(prefix) and (all_ns or jns == ns)]
        return Response(200, out)

    def _job_body(self, request: Request) -> dict:
        body = _go_fields(request.json(), ("Job", "Diff", "PolicyOverride", "EnforceIndex", "JobModifyIndex"))
        if not isinstance(body, dict) or not isinstance(body.get("Job"), dict):
            raise HTTPError(400, "Job must be specified")
        return body

    def jobs_register(self, request: Request) -> Response:
        body = self._job_body(request)
        return Response(200, self._register(body["Job"], body["Job"].get("Namespace") or self._ns(request),
                                            body.get("EnforceIndex", False), body.get("JobModifyIndex", 0)))

    def job_register(self, request: Request) -> Response:
        body = self._job_body(request)
        if body["Job"].get("ID") != request.params["id"]:
            raise HTTPError(400, "Job ID does not match name")
        return Response(200, self._register(body["Job"], body["Job"].get("Namespace") or self._ns(request),
                                            body.get("EnforceIndex", False), body.get("JobModifyIndex", 0)))

    def jobs_parse(self, request: Request) -> Response:
        body = _go_fields(request.json() or {}, ("JobHCL", "HCLv1", "Variables", "Canonicalize"))
        if body.get("HCLv1"):
            raise HTTPError(400, "HCLv1 job specifications are no longer supported")
        try:
            job = jobspec.parse(body.get("JobHCL") or "", body.get("Variables") or "")
        except jobspec.ParseError as exc:
            raise HTTPError(400, str(exc))
        if body.get("Canonicalize"):
            job = jobmod.canonicalize(job)
        return Response(200, job)

    def _job_or_404(self, request: Request) -> dict:
        self._settle()
        job = self._get_job(self._ns(request), request.params["id"])
        if job is None:
            raise HTTPError(404, NOT_FOUND_JOB)
        return job

    def job_read(self, request: Request) -> Response:
        return Response(200, self._job_or_404(request))

    def job_versions(self, request: Request) -> Response:
        self._job_or_404(request)
        versions = list(reversed(self.jobs[(self._ns(request), request.params["id"])]))
        diffs = None
        if _go_bool(request.query.get("diffs")):
            diffs = [jobmod.job_diff(versions[i + 1], versions[i]) for i in range(len(versions) - 1)]
        return Response(200, {"Versions": versions, "Diffs": diffs, "Index": self.index,
                              "LastContact": 0, "KnownLeader": False})

    def job_plan(self, request: Request) -> Response:
        body = self._job_body(request)
        submitted = body["Job"]
        if submitted.get("ID") != request.params["id"]:
            raise HTTPError(400, "Job ID does not match")
        job = jobmod.admit(jobmod.canonicalize(submitted), self.vault_default_identity)
        ns = job["Namespace"] if job.get("Namespace") not in (None, "", "default") else self._ns(request)
        job["Namespace"] = ns
        self._require_ns(ns)
        errors = jobmod.validate(job, self.vault_default_identity)
        if errors:
            raise HTTPError(500, jobmod.multierror(errors))
        existing = self._get_job(ns, job["ID"])
        if existing is not None and existing.get("Stop"):
            existing = None
        diff = jobmod.job_diff(existing, job)
        updates = {}
        for tg in diff["TaskGroups"] or []:
            u = tg["Updates"]
            updates[tg["Name"]] = {"Ignore": u.get("ignore", 0), "Place": u.get("create", 0),
                                   "Migrate": 0, "Stop": u.get("destroy", 0),
                                   "InPlaceUpdate": u.get("in-place update", 0),
                                   "DestructiveUpdate": u.get("create/destroy update", 0), "Canary": 0,
                                   "Preemptions": 0}
        resp = {"Annotations": {"DesiredTGUpdates": updates, "PreemptedAllocs": None},
                "FailedTGAllocs": None, "JobModifyIndex": existing["JobModifyIndex"] if existing else 0,
                "CreatedEvals": None, "Diff": diff if body.get("Diff") else None,
                "NextPeriodicLaunch": "0001-01-01T00:00:00Z", "Warnings": "", "Index": self.index}
        return Response(200, resp)

    def job_deregister(self, request: Request) -> Response:
        ns = self._ns(request)
        job = self._get_job(ns, request.params["id"])
        idx = self._next()
        if job is None:
            # Job.Deregister returns nil for an unknown job: a zero-valued reply, no evaluation.
            return Response(200, {"EvalID": "", "EvalCreateIndex": 0, "JobModifyIndex": 0, "VolumeEvalID": "",
                                  "VolumeEvalIndex": 0, "Index": 0, "LastContact": 0, "KnownLeader": False})
        purge = _go_bool(request.query.get("purge"))
        job["Stop"] = True
        job["JobModifyIndex"] = job["ModifyIndex"] = idx
        eval_id = ""
        if not (job.get("Periodic") or job.get("ParameterizedJob")):
            eval_id = self._evaluate(job, "job-deregister")
        if purge:
            del self.jobs[(ns, job["ID"])]
        return Response(200, {"EvalID": eval_id, "EvalCreateIndex": idx, "JobModifyIndex": idx, "Index": idx,
                              "VolumeEvalID": "", "VolumeEvalIndex": 0, "LastContact": 0, "KnownLeader": False})

    def _job_allocs(self, request: Request) -> list[dict]:
        self._settle()
        ns, jid = self._ns(request), request.params["id"]
        allocs = [a for a in self.allocs.values() if a["JobID"] == jid and a["Namespace"] == ns]
        return sorted(allocs, key=lambda a: -a["CreateIndex"])

    def job_allocations(self, request: Request) -> Response:
        allocs = self._job_allocs(request)
        if not _go_bool(request.query.get("all")):
            job = self._get_job(self._ns(request), request.params["id"])
            allocs = [a for a in allocs if job is None or a["JobVersion"] >= 0]
        return Response(200, [_public(a) for a in allocs])

    def job_evaluations(self, request: Request) -> Response:
        ns, jid = self._ns(request), request.params["id"]
        return Response(200, [e for e in self.evals.values() if e["JobID"] == jid and e["Namespace"] == ns])

    def _job_deps(self, request: Request) -> list[dict]:
        self._settle()
        ns, jid = self._ns(request), request.params["id"]
        deps = [d for d in self.deployments.values() if d["JobID"] == jid and d["Namespace"] == ns]
        return sorted(deps, key=lambda d: -d["CreateIndex"])

    def job_deployments(self, request: Request) -> Response:
        return Response(200, self._job_deps(request))

    def job_deployment(self, request: Request) -> Response:
        deps = self._job_deps(request)
        return Response(200, deps[0]) if deps else _json_response(None)

    def job_summary(self, request: Request) -> Response:
        job = self._job_or_404(request)
        summary = {}
        for group in job.get("TaskGroups") or []:
            allocs = [a for a in self.allocs.values() if a["JobID"] == job["ID"] and a["TaskGroup"] == group["Name"]]
            summary[group["Name"]] = {k.capitalize(): sum(1 for a in allocs if a["ClientStatus"] == k)
                                      for k in ("queued", "complete", "failed", "running", "starting", "lost",
                                                "unknown")}
            summary[group["Name"]]["Starting"] = sum(1 for a in allocs if a["ClientStatus"] == "pending")
        return Response(200, {"JobID": job["ID"], "Namespace": job["Namespace"], "Summary": summary,
                              "Children": {"Pending": 0, "Running": 0, "Dead": 0},
                              "CreateIndex": job["CreateIndex"], "ModifyIndex": job["ModifyIndex"]})

    def job_periodic_force(self, request: Request) -> Response:
        job = self._job_or_404(request)
        if not job.get("Periodic"):
            raise HTTPError(400, "can't force launch non-periodic job")
        res = self._launch_periodic(job, time.time())
        return Response(200, {"EvalID": res["EvalID"], "EvalCreateIndex": res["EvalCreateIndex"],
                              "Index": res["Index"]})

    def _launch_periodic(self, job: dict, when: float) -> dict:
        """Derive and register the child job ``<id>/periodic-<unix time>`` of a periodic job."""
        child = copy.deepcopy(job)
        child.pop("Periodic")
        child["ID"] = child["Name"] = "%s/periodic-%d" % (job["ID"], int(when))
        child["ParentID"] = job["ID"]
        res = self._register(child, job["Namespace"])
        self._get_job(job["Namespace"], child["ID"])["ParentID"] = job["ID"]
        return res

    def periodic_tick(self, now: float | None = None) -> list[str]:
        """Launch the periodic jobs whose cron matches the current second or minute (the agent calls
        this about twice a second; see start_periodic). Returns the IDs of the children launched."""
        from . import cron

        now = time.time() if now is None else now
        launched = []
        with self.lock:
            for (ns, job_id), versions in list(self.jobs.items()):
                job = versions[-1]
                periodic = job.get("Periodic") or {}
                if not periodic or job.get("Stop") or not periodic.get("Enabled", True) or \
                        periodic.get("SpecType", "cron") != "cron":
                    continue
                try:
                    slots = [cron.slot(spec, now, periodic.get("TimeZone") or "UTC")
                             for spec in periodic.get("Specs") or ([periodic["Spec"]] if periodic.get("Spec") else [])]
                except ValueError:
                    continue
                key = (ns, job_id)
                seen = self._periodic_seen.setdefault(key, {})
                for spec_slot in slots:
                    spec, slot, due = spec_slot
                    if spec not in seen:  # first sight: the next matching time after now fires
                        seen[spec] = slot
                        continue
                    if slot == seen[spec]:
                        continue
                    seen[spec] = slot
                    if not due:
                        continue
                    if periodic.get("ProhibitOverlap") and any(
                            a["JobID"].startswith(job_id + "/periodic-") and a["Namespace"] == ns and
                            a["DesiredStatus"] == "run" and a["ClientStatus"] in ("pending", "running")
                            for a in self.allocs.values()):
                        continue
                    self._launch_periodic(job, now)
                    launched.append(job_id)
                    break
        return launched

    def start_periodic(self) -> None:
        """Fire periodic jobs on their cron from a background thread (the agent process does this)."""
        def loop() -> None:
            while not self._periodic_stop.wait(0.5):
                self.periodic_tick()

        threading.Thread(target=loop, daemon=True, name="nomad-sim-periodic").start()

    # allocations / evaluations / deployments
    def allocations_list(self, request: Request) -> Response:
        self._settle()
        return Response(200, [_public(a) for a in self.allocs.values()])

    def allocation_read(self, request: Request) -> Response:
        self._settle()
        alloc = self.allocs.get(request.params["id"])
        if alloc is None:
            raise HTTPError(404, "alloc not found")
        out = _public(alloc)
        out["Job"] = self._get_job(alloc["Namespace"], alloc["JobID"])
        return Response(200, out)

    def evaluation_read(self, request: Request) -> Response:
        ev = self.evals.get(request.params["id"])
        if ev is None:
            raise HTTPError(404, "eval not found")
        return Response(200, ev)

    def deployments_list(self, request: Request) -> Response:
        self._settle()
        return Response(200, list(self.deployments.values()))

    def deployment_read(self, request: Request) -> Response:
        self._settle()
        dep = self.deployments.get(request.params["id"])
        if dep is None:
            raise HTTPError(404, "deployment not found")
        return Response(200, dep)

    # namespaces
    def namespaces_list(self, request: Request) -> Response:
        return Response(200, sorted(self.namespaces.values(), key=lambda n: n["Name"]))

    def namespace_write(self, request: Request) -> Response:
        body = request.json() or {}
        name = request.params.get("name") or body.get("Name")
        if not name:
            raise HTTPError(400, "Missing namespace name")
        if body.get("Name") and body["Name"] != name:
            raise HTTPError(400, "Namespace name does not match request path")
        ns = self.namespaces.get(name) or self._ns_obj(name)
        idx = self._next()
        ns.update({k: body[k] for k in ("Description", "Meta", "Quota") if k in body})
        ns["ModifyIndex"] = idx
        if name not in self.namespaces:
            ns["CreateIndex"] = idx
        self.namespaces[name] = ns
        return Response(200, None)

    def namespace_read(self, request: Request) -> Response:
        ns = self.namespaces.get(request.params["name"])
        if ns is None:
            raise HTTPError(404, "Namespace not found")
        return Response(200, ns)

    def namespace_delete(self, request: Request) -> Response:
        name = request.params["name"]
        if name == "default":
            raise HTTPError(400, "default namespace can not be deleted")
        if any(k[0] == name for k in self.jobs):
            raise HTTPError(500, 'namespace "%s" has non-terminal jobs in regions: [%s]' % (name, self.region))
        self.namespaces.pop(name, None)
        return Response(200, None)

    # dynamic host volumes
    def _volume_write(self, request: Request, create: bool) -> Response:
        body = request.json() or {}
        vol = body.get("Volume")
        if not isinstance(vol, dict):
            raise HTTPError(400, "missing volume definition")
        errors = []
        if not vol.get("Name"):
            errors.append("missing name")
        if not create and not vol.get("NodeID"):
            errors.append("node ID is required to register volume")
        if not create and not vol.get("HostPath"):
            errors.append("host path is required to register volume")
        if errors:
            raise HTTPError(400, "volume validation failed: " + jobmod.multierror(errors))
        ns = vol.get("Namespace") or self._ns(request)
        self._require_ns(ns)
        existing = self.host_volumes.get(vol.get("ID", "")) if vol.get("ID") else None
        if vol.get("ID") and existing is None:
            raise HTTPError(400, 'cannot update volume "%s": volume does not exist' % vol["ID"])
        idx = self._next()
        now = _now_ns()
        out = dict(existing or {})
        server_owned = ("CreateIndex", "ModifyIndex", "CreateTime", "ModifyTime", "State", "Allocations")
        out.update({k: v for k, v in vol.items() if k not in server_owned})
        out.setdefault("ID", str(uuid.uuid4()))
        out["Namespace"] = ns
        out.setdefault("PluginID", "mkdir" if create else "")
        clustered = self.runner is None and (self.nodes or self.router is not None)
        if clustered:  # client nodes of client-only agents (cluster.py): the volume is on one of them
            ready = [n for n in sorted(self.nodes.values(), key=lambda n: n["Name"]) if self._node_status(n) == "ready"]
            if not out.get("NodeID") and create and ready:
                out["NodeID"] = ready[0]["ID"]
            if not out.get("NodeID"):
                raise HTTPError(400, "could not place volume: no node meets constraints")
            if out["NodeID"] not in self.nodes:
                raise HTTPError(400, 'could not place volume: node "%s" not found' % out["NodeID"])
        out["NodeID"] = out.get("NodeID") or self.node_id
        out["NodePool"] = out.get("NodePool") or "default"
        out.setdefault("Constraints", None)
        out.setdefault("RequestedCapacityMinBytes", 0)
        out.setdefault("RequestedCapacityMaxBytes", 0)
        out["CapacityBytes"] = out.get("CapacityBytes") or out["RequestedCapacityMinBytes"]
        out.setdefault("RequestedCapabilities", [{"AttachmentMode": "file-system",
                                                  "AccessMode": "single-node-writer"}])
        out.setdefault("Parameters", None)
        if create and not out.get("HostPath"):  # the mkdir plugin: <data_dir>/host_volumes/<id> on the client
            base = os.path.join(self.data_dir or "/opt/nomad/data", "host_volumes")
            if clustered:  # the node's client { host_volumes_dir } (its agent makes the directory)
                base = self.nodes[out["NodeID"]].get("HostVolumesDir") or "/opt/nomad/data/host_volumes"
            out["HostPath"] = os.path.join(base, out["ID"])
            if self.runner is not None:
                os.makedirs(out["HostPath"], mode=0o700, exist_ok=True)
        out["State"] = "ready"
        out["CreateIndex"] = existing["CreateIndex"] if existing else idx
        out["CreateTime"] = existing["CreateTime"] if existing else now
        out["ModifyIndex"], out["ModifyTime"] = idx, now
        self.host_volumes[out["ID"]] = out
        if clustered:
            self._unblock("volume-update")
        return Response(200, {"Volume": out, "Warnings": "", "Index": idx})

    def volume_create(self, request: Request) -> Response:
        return self._volume_write(request, True)

    def volume_register(self, request: Request) -> Response:
        return self._volume_write(request, False)

    def volumes_list(self, request: Request) -> Response:
        if request.query.get("type") != "host":
            if request.query.get("type") == "csi":
                return Response(200, [])
            raise HTTPError(400, "unsupported volume type")
        ns = self._ns(request)
        all_ns = request.query.get("namespace") == "*"
        keys = ("Namespace", "ID", "Name", "PluginID", "NodePool", "NodeID", "CapacityBytes", "State",
                "CreateIndex", "CreateTime", "ModifyIndex", "ModifyTime")
        out = [{k: v[k] for k in keys} for v in self.host_volumes.values()
               if (all_ns or v["Namespace"] == ns)
               and (not request.query.get("node_id") or v["NodeID"] == request.query["node_id"])
               and (not request.query.get("node_pool") or v["NodePool"] == request.query["node_pool"])
               and v["Name"].startswith(request.query.get("prefix", ""))]
        return Response(200, out)

    def volume_read(self, request: Request) -> Response:
        vol = self.host_volumes.get(request.params["id"])
        if vol is None or vol["Namespace"] != self._ns(request):
            raise HTTPError(404, "volume not found")
        return Response(200, vol)

    def volume_delete(self, request: Request) -> Response:
        vol = self.host_volumes.get(request.params["id"])
        if vol is None:
            raise HTTPError(404, "volume not found")
        del self.host_volumes[vol["ID"]]
        return Response(200, None)

    # variables
    def _var_key(self, request: Request) -> tuple[str, str]:
        return self._ns(request), request.params["path"]

    def var_read(self, request: Request) -> Response:
        var = self.variables.get(self._var_key(request))
        if var is None:
            raise HTTPError(404, "variable not found")
        return Response(200, var)

    def var_write(self, request: Request) -> Response:
        body = request.json() or {}
        ns, path = self._var_key(request)
        if body.get("Path") and body["Path"] != path:
            raise HTTPError(400, "variable path does not match request path")
        if not isinstance(body.get("Items"), dict) or not body["Items"]:
            raise HTTPError(400, "variable missing Items")
        existing = self.variables.get((ns, path))
        if "cas" in request.query:
            cas = int(request.query["cas"])
            current = existing["ModifyIndex"] if existing else 0
            if cas != current:
                return Response(409, existing or {"Namespace": ns, "Path": path})
        idx = self._next()
        now = _now_ns()
        var = {"Namespace": ns, "Path": path, "Items": {k: str(v) for k, v in body["Items"].items()},
               "CreateIndex": existing["CreateIndex"] if existing else idx, "ModifyIndex": idx,
               "CreateTime": existing["CreateTime"] if existing else now, "ModifyTime": now}
        self.variables[(ns, path)] = var
        return Response(200, var)

    def var_delete(self, request: Request) -> Response:
        key = self._var_key(request)
        if "cas" in request.query:
            existing = self.variables.get(key)
            if int(request.query["cas"]) != (existing["ModifyIndex"] if existing else 0):
                return Response(409, existing)
        self.variables.pop(key, None)
        return Response(204, None)

    def vars_list(self, request: Request) -> Response:
        ns = self._ns(request)
        prefix = request.query.get("prefix", "")
        all_ns = request.query.get("namespace") == "*"
        out = [{k: v[k] for k in ("Namespace", "Path", "CreateIndex", "ModifyIndex", "CreateTime", "ModifyTime")}
               for (vns, path), v in sorted(self.variables.items())
               if (all_ns or vns == ns) and path.startswith(prefix)]
        return Response(200, out)

    # knobs
    def sim_outcome(self, request: Request) -> Response:
        body = request.json() or {}
        outcome = body.get("Outcome", "healthy")
        if outcome not in ("healthy", "failed", "pending"):
            raise HTTPError(400, "Outcome must be healthy, failed or pending")
        self.set_outcome(outcome, request.params.get("id"))
        if "SettleSeconds" in body:
            self.settle_seconds = float(body["SettleSeconds"])
        return Response(200, {"Outcome": outcome})

    def set_outcome(self, outcome: str, job_id: str | None = None) -> None:
        with self.lock:
            if job_id:
                self.job_outcomes[job_id] = outcome
            else:
                self.default_outcome = outcome


def _go_fields(body: Any, names: tuple[str, ...]) -> Any:
    """Go's encoding/json matches object keys to struct fields case-insensitively (``job`` fills ``Job``)."""
    if not isinstance(body, dict):
        return body
    out = dict(body)
    for name in names:
        if name not in out:
            for key in body:
                if key.lower() == name.lower():
                    out[name] = body[key]
                    break
    return out


def _go_bool(value: str | None) -> bool:
    """strconv.ParseBool's true values."""
    return value in ("1", "t", "T", "TRUE", "true", "True")


def _json_response(body: Any) -> Response:
    return Response(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%06dZ" % int((ts % 1) * 1e6)


def _event(kind: str, message: str, driver_error: str = "", fails_task: bool = False) -> dict:
    return {"Type": kind, "Time": _now_ns(), "DisplayMessage": message, "Message": message if kind != "Started"
            else "", "Details": {}, "FailsTask": fails_task, "DriverError": driver_error, "ExitCode": 0,
            "Signal": 0, "RestartReason": "", "KillTimeout": 0, "KillError": "", "KillReason": "",
            "StartDelay": 0, "DownloadError": "", "ValidationError": "", "DiskLimit": 0, "FailedSibling": "",
            "VaultError": "", "TaskSignalReason": "", "TaskSignal": "", "DriverMessage": "", "GenericSource": ""}


def _public(alloc: dict) -> dict:
    return {k: v for k, v in alloc.items() if not k.startswith("_")}


def _stub(job: dict, sim: NomadSim) -> dict:
    return {"ID": job["ID"], "ParentID": job.get("ParentID", ""), "Name": job["Name"], "Namespace": job["Namespace"],
            "Datacenters": job["Datacenters"], "Multiregion": None, "Type": job["Type"], "Priority": job["Priority"],
            "Periodic": bool(job.get("Periodic")), "ParameterizedJob": bool(job.get("ParameterizedJob")),
            "Stop": job.get("Stop", False), "Status": job["Status"], "StatusDescription": "",
            "JobSummary": None, "CreateIndex": job["CreateIndex"], "ModifyIndex": job["ModifyIndex"],
            "JobModifyIndex": job["JobModifyIndex"], "SubmitTime": job["SubmitTime"], "Meta": job.get("Meta")}
