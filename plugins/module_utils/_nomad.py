# -*- coding: utf-8 -*-
# Copyright (c) selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the Nomad connection (options, client) and the job helpers of nomad_job / nomad_job_info."""

from __future__ import annotations

import json
import os
import time
import traceback
from urllib.parse import urlsplit

from ansible.module_utils.basic import env_fallback, missing_required_lib

NOMAD_IMP_ERR = None
try:
    import nomad
    import nomad.api.exceptions as nomad_exc
    import requests
    HAS_NOMAD = True
except ImportError:
    NOMAD_IMP_ERR = traceback.format_exc()
    HAS_NOMAD = False

CONNECTION_ARGSPEC = dict(
    address=dict(type="str", aliases=["url"], fallback=(env_fallback, ["NOMAD_ADDR"])),
    token=dict(type="str", no_log=True, fallback=(env_fallback, ["NOMAD_TOKEN"])),
    region=dict(type="str", fallback=(env_fallback, ["NOMAD_REGION"])),
    namespace=dict(type="str", fallback=(env_fallback, ["NOMAD_NAMESPACE"])),
    ca_cert=dict(type="path", fallback=(env_fallback, ["NOMAD_CACERT"])),
    client_cert=dict(type="path", fallback=(env_fallback, ["NOMAD_CLIENT_CERT"])),
    client_key=dict(type="path", no_log=False, fallback=(env_fallback, ["NOMAD_CLIENT_KEY"])),
    validate_certs=dict(type="bool", default=True),
    timeout=dict(type="int", default=15),
)


class NomadError(Exception):
    """A failure with a one-line message fit for fail_json."""


def _one_line(text):
    return " ".join(str(text).split())


class NomadConnection:
    """python-nomad client built from the shared options, with errors turned into one-line NomadErrors."""

    def __init__(self, module):
        if not HAS_NOMAD:
            module.fail_json(msg=missing_required_lib("python-nomad"), exception=NOMAD_IMP_ERR)
        params = module.params
        address = (params["address"] or "http://127.0.0.1:4646").rstrip("/")
        split = urlsplit(address)
        if split.scheme not in ("http", "https") or not split.hostname:
            module.fail_json(msg="address: %r is not an http(s) URL" % address)
        verify = params["validate_certs"] and os.environ.get("NOMAD_SKIP_VERIFY", "") not in ("1", "true")
        if verify and params["ca_cert"]:
            verify = params["ca_cert"]
        cert = (params["client_cert"] or "", params["client_key"] or "")
        self.address = address
        self.namespace = params["namespace"] or "default"
        self.client = nomad.Nomad(address=address, token=params["token"] or None, region=params["region"],
                                  namespace=self.namespace, verify=verify, cert=cert,
                                  timeout=params["timeout"], secure=split.scheme == "https")

    def call(self, what, func, *args, **kwargs):
        """Run a python-nomad call; answers None on 404, raises NomadError otherwise."""
        try:
            return func(*args, **kwargs)
        except nomad_exc.URLNotFoundNomadException:
            return None
        except nomad_exc.URLNotAuthorizedNomadException as exc:
            raise NomadError("%s: permission denied (HTTP 403: %s); check the token"
                             % (what, _one_line(_text(exc))))
        except nomad_exc.BaseNomadException as exc:
            resp = exc.nomad_resp
            if isinstance(resp, requests.Response):
                raise NomadError("%s: HTTP %d: %s" % (what, resp.status_code, _one_line(resp.text)))
            raise NomadError("%s: cannot reach Nomad at %s: %s" % (what, self.address, _one_line(resp)))
        except requests.RequestException as exc:
            raise NomadError("%s: cannot reach Nomad at %s: %s" % (what, self.address, _one_line(exc)))

    # ---- endpoints python-nomad lacks or shapes differently --------------------
    def parse_hcl(self, hcl, variables):
        body = {"JobHCL": hcl, "Canonicalize": False}
        if variables:
            body["Variables"] = variables
        resp = self.call("parse job HCL", self.client.jobs.request, "parse", json=body, method="post")
        return resp.json()

    def get_job(self, job_id):
        return self.call("read job %s" % job_id, self.client.job.get_job, job_id)

    def plan(self, job):
        return self.call("plan job %s" % job["ID"], self.client.job.plan_job, job["ID"], {"Job": job}, diff=True)

    def register(self, job):
        return self.call("register job %s" % job["ID"], self.client.job.register_job, job["ID"], {"Job": job})

    def deregister(self, job_id, purge):
        return self.call("stop job %s" % job_id, self.client.job.deregister_job, job_id, purge=purge)

    def allocations(self, job_id):
        return self.call("read allocations of %s" % job_id, self.client.job.get_allocations, job_id) or []

    def latest_deployment(self, job_id):
        return self.call("read deployment of %s" % job_id, self.client.job.get_deployment, job_id)

    def evaluation(self, eval_id):
        return self.call("read evaluation %s" % eval_id, self.client.evaluation.get_evaluation, eval_id)


def _text(exc):
    resp = getattr(exc, "nomad_resp", None)
    return getattr(resp, "text", None) or str(resp)


# ---- job content ------------------------------------------------------------

def load_job(conn, content, content_format, variables):
    """Turn the module's job input into an API job dict; answers (job, source)."""
    if isinstance(content, dict):
        job = content
        fmt = "dict"
    else:
        text = content.strip()
        fmt = content_format
        if fmt == "auto":
            fmt = "json" if text.startswith("{") else "hcl"
        if fmt == "json":
            try:
                job = json.loads(text)
            except ValueError as exc:
                raise NomadError("content: invalid JSON: %s" % exc)
        else:
            return conn.parse_hcl(text, variables), "hcl"
    if variables:
        raise NomadError("variables: only HCL job files take variables")
    if isinstance(job, dict) and set(job) == {"Job"}:
        job = job["Job"]
    if isinstance(job, dict) and "job" in job and "ID" not in job:
        raise NomadError("content: looks like HCL-as-JSON (a 'job' key); give the API JSON form (Job/ID/TaskGroups)")
    if not isinstance(job, dict) or not job.get("ID"):
        raise NomadError("content: the job has no ID")
    return job, fmt


def render_variables(variables):
    """Module variables (a dict) -> the HCL var-file text the parse endpoint takes."""
    if not variables:
        return ""
    lines = []
    for key in sorted(variables):
        lines.append("%s = %s" % (key, json.dumps(variables[key])))
    return "\n".join(lines) + "\n"


# ---- diff rendering ---------------------------------------------------------

_REDACT_HINTS = ("token", "password", "secret", "key")


def _redact(name, value):
    low = name.lower()
    if value and any(h in low for h in _REDACT_HINTS) and "keyring" not in low:
        return "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    return value


def flatten_diff(diff):
    """Nomad's plan diff -> ({path: old}, {path: new}) for changed fields only."""
    before, after = {}, {}

    def fields(prefix, items):
        for f in items or []:
            if f.get("Type") == "None":
                continue
            path = "%s.%s" % (prefix, f["Name"]) if prefix else f["Name"]
            if f["Type"] != "Added":
                before[path] = _redact(path, f.get("Old"))
            if f["Type"] != "Deleted":
                after[path] = _redact(path, f.get("New"))

    def objects(prefix, items):
        for o in items or []:
            if o.get("Type") == "None":
                continue
            path = "%s.%s" % (prefix, o["Name"]) if prefix else o["Name"]
            fields(path, o.get("Fields"))
            objects(path, o.get("Objects"))

    if not diff:
        return before, after
    fields("", diff.get("Fields"))
    objects("", diff.get("Objects"))
    for tg in diff.get("TaskGroups") or []:
        if tg.get("Type") == "None":
            continue
        tgp = "group[%s]" % tg["Name"]
        if tg["Type"] in ("Added", "Deleted") and not tg.get("Fields"):
            (after if tg["Type"] == "Added" else before)[tgp] = tg["Type"].lower()
        fields(tgp, tg.get("Fields"))
        objects(tgp, tg.get("Objects"))
        for task in tg.get("Tasks") or []:
            if task.get("Type") == "None":
                continue
            tp = "%s.task[%s]" % (tgp, task["Name"])
            fields(tp, task.get("Fields"))
            objects(tp, task.get("Objects"))
    return before, after


def diff_to_text(before, after):
    keys = sorted(set(before) | set(after))
    lines = []
    for key in keys:
        if key not in before:
            lines.append("+ %s: %s" % (key, after[key]))
        elif key not in after:
            lines.append("- %s: %s" % (key, before[key]))
        else:
            lines.append("~ %s: %s => %s" % (key, before[key], after[key]))
    return "\n".join(lines)


# ---- waiting ----------------------------------------------------------------

def failed_alloc_events(allocs, limit=3):
    """One line per failed allocation: its task events that explain the failure."""
    out = []
    for alloc in allocs:
        if alloc.get("ClientStatus") != "failed" and not (
                alloc.get("DeploymentStatus") and alloc["DeploymentStatus"].get("Healthy") is False):
            continue
        msgs = []
        for task, state in sorted((alloc.get("TaskStates") or {}).items()):
            events = [e.get("DisplayMessage") or e.get("Message") or e.get("Type")
                      for e in state.get("Events") or [] if e.get("Type") not in ("Received", "Task Setup")]
            if events:
                msgs.append("task %s: %s" % (task, "; ".join(events[-3:])))
        out.append("alloc %s (%s): %s" % (alloc.get("ID", "")[:8], alloc.get("Name"), " | ".join(msgs) or "failed"))
        if len(out) >= limit:
            break
    return out


def wait_for_deployment(conn, job, eval_id, timeout, poll=0.5):
    """Wait until the deployment of this job version settles. Answers the deployment; raises NomadError."""
    deadline = time.monotonic() + timeout
    job_id = job["ID"]
    deployment = None
    while True:
        current = conn.get_job(job_id)
        version = current.get("Version") if current else None
        deployment = conn.latest_deployment(job_id)
        if deployment and deployment.get("JobVersion") == version:
            status = deployment.get("Status")
            if status == "successful":
                return deployment
            if status in ("failed", "cancelled"):
                allocs = [a for a in conn.allocations(job_id) if a.get("DeploymentID") == deployment["ID"]]
                detail = failed_alloc_events(allocs)
                raise NomadError("deployment %s of job %s %s: %s%s" % (
                    deployment["ID"][:8], job_id, status, deployment.get("StatusDescription", ""),
                    (" -- " + " || ".join(detail)) if detail else ""))
        if time.monotonic() >= deadline:
            state = deployment.get("Status") if deployment else "not created"
            allocs = conn.allocations(job_id)
            detail = failed_alloc_events(allocs)
            raise NomadError("timed out after %ss waiting for job %s to become healthy (deployment %s)%s" % (
                timeout, job_id, state, (" -- " + " || ".join(detail)) if detail else ""))
        time.sleep(poll)


def needs_deployment(job):
    """Periodic, parameterized, batch and system jobs have no deployment to wait for."""
    return (job.get("Type") or "service") == "service" and not job.get("Periodic") and not job.get(
        "ParameterizedJob")
