#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_job
short_description: Submit, update or stop a Nomad job, idempotently through Nomad's plan
version_added: "0.1.0"
description:
  - Submits a Nomad job given as HCL2 (parsed by the server's C(/v1/jobs/parse), with HCL2 C(variables)),
    as API JSON, or as a YAML/dict structure of the API JSON.
  - Asks the server to plan the job first; the job is registered only when the plan's diff is not V(None),
    so an unchanged job costs a parse (HCL only) and one plan request.
  - Can wait until the new deployment is healthy, and fails with the failing allocations' task events when it
    is not. Batch, periodic, parameterized and system jobs register without waiting.
  - O(state=absent) stops the job (and with O(purge=true) removes it); a job that does not exist is left alone.
author:
  - selfhost.homelab contributors (@selfhost)
extends_documentation_fragment:
  - selfhost.homelab.nomad
attributes:
  check_mode:
    support: full
    description: Plans the job and reports the plan; registers and stops nothing.
  diff_mode:
    support: full
    description: Shows the plan's diff as one line per changed field (before/after), values of secret-looking
      fields redacted.
  idempotent:
    support: full
    description: C(changed) only when Nomad's plan diff is not V(None), or when an existing job is stopped/purged.
options:
  name:
    description:
      - ID of the job. Optional with O(content); when both are given they must agree.
      - Required for O(state=absent) without O(content).
    type: str
    aliases: [id]
  content:
    description:
      - The job. A string holding HCL2 or API JSON (see O(content_format)), or a dict holding the API JSON form
        (C(ID), C(TaskGroups), and so on), with or without the C(Job) wrapper key around it.
    type: raw
  content_format:
    description:
      - How to read a string O(content). V(auto) treats text starting with C({) as JSON and anything else as HCL.
    type: str
    choices: [auto, hcl, json]
    default: auto
  variables:
    description:
      - Values for the HCL job file's C(variable) blocks; sent with the parse request.
    type: dict
  state:
    description:
      - V(present) submits the job; V(absent) stops it.
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - With O(state=absent), remove the job from Nomad instead of only stopping it.
    type: bool
    default: false
  wait:
    description:
      - After a change, wait until the job's new deployment is V(successful); fail when it becomes V(failed).
      - Ignored for jobs without deployments (batch, periodic, parameterized, system).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait with O(wait=true).
    type: int
    default: 300
seealso:
  - module: selfhost.homelab.nomad_job_info
  - name: Nomad jobs HTTP API
    description: The endpoints this module calls (parse, plan, register, deregister).
    link: https://developer.hashicorp.com/nomad/api-docs/jobs
"""

EXAMPLES = r"""
- name: Run Traefik from an HCL2 job file, with variables, and wait until it is healthy
  selfhost.homelab.nomad_job:
    address: https://nomad.home.example:4646
    token: "{{ nomad_management_token }}"
    content: "{{ lookup('ansible.builtin.template', 'traefik.nomad.hcl.j2') }}"
    variables:
      image: traefik:v3.7
    wait: true
    wait_timeout: 180

- name: Submit a job given as API JSON
  selfhost.homelab.nomad_job:
    content: "{{ lookup('ansible.builtin.file', 'whoami.json') }}"
    content_format: json

- name: Submit a job written as YAML (the API JSON structure)
  selfhost.homelab.nomad_job:
    content:
      ID: whoami
      Type: service
      TaskGroups:
        - Name: whoami
          Count: 1
          Tasks:
            - Name: whoami
              Driver: docker
              Config:
                image: traefik/whoami:v1.10

- name: Set the connection once for every nomad module of a play
  hosts: localhost
  module_defaults:
    group/selfhost.homelab.nomad:
      address: http://127.0.0.1:4646
      token: "{{ nomad_token }}"
  tasks:
    - name: Stop and purge an old job (nothing happens when it is not there)
      selfhost.homelab.nomad_job:
        name: photoprism-old
        state: absent
        purge: true
"""

RETURN = r"""
job_id:
  description: ID of the job.
  returned: always
  type: str
  sample: traefik
diff_type:
  description: The plan's C(Diff.Type) (V(None), V(Added), V(Edited)), or V(Deleted) for a stop.
  returned: always
  type: str
  sample: Edited
plan:
  description: Nomad's plan answer (C(Diff), C(Annotations), C(Warnings), ...).
  returned: when O(state=present)
  type: dict
changes:
  description: One line per changed field, C(+ added), C(- removed) or C(~ old => new).
  returned: always
  type: list
  elements: str
  sample: ["~ group[traefik].task[traefik].Config.image: traefik:v3.6 => traefik:v3.7"]
eval_id:
  description: The evaluation the registration or stop created.
  returned: when the job was registered or stopped
  type: str
deployment:
  description: The deployment that was waited for.
  returned: with O(wait=true) when the job has a deployment
  type: dict
job:
  description: The job as submitted (after HCL parsing).
  returned: when O(state=present)
  type: dict
warnings_from_nomad:
  description: Warnings Nomad returned with the plan or registration.
  returned: when Nomad sent any
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.homelab.plugins.module_utils._nomad import (
    CONNECTION_ARGSPEC,
    NomadConnection,
    NomadError,
    diff_to_text,
    flatten_diff,
    load_job,
    needs_deployment,
    render_variables,
    wait_for_deployment,
)


def present(module, conn):
    params = module.params
    content = params["content"]
    if content is None:
        raise NomadError("content: required with state=present")
    if not isinstance(content, (str, dict)):
        raise NomadError("content: must be a string (HCL or JSON) or a dict (API JSON)")
    if isinstance(content, dict) and params["variables"]:
        raise NomadError("variables: only HCL job files take variables")
    job, _fmt = load_job(conn, content, params["content_format"], render_variables(params["variables"]))
    if params["name"] and params["name"] != job["ID"]:
        raise NomadError("name: %r differs from the job file's ID %r" % (params["name"], job["ID"]))
    if job.get("Namespace") and job["Namespace"] != conn.namespace and params["namespace"]:
        raise NomadError("namespace: %r differs from the job's Namespace %r" % (params["namespace"], job["Namespace"]))
    job.setdefault("Namespace", conn.namespace)
    plan = conn.plan(job)
    diff = (plan or {}).get("Diff") or {}
    diff_type = diff.get("Type", "None")
    changed = diff_type != "None"
    before, after = flatten_diff(diff)
    changes = diff_to_text(before, after).splitlines()
    result = dict(changed=changed, job_id=job["ID"], diff_type=diff_type, plan=plan, changes=changes, job=job)
    if plan and plan.get("Warnings"):
        result["warnings_from_nomad"] = plan["Warnings"]
    if module._diff:
        result["diff"] = dict(before_header="nomad job %s (current)" % job["ID"],
                              after_header="nomad job %s (planned)" % job["ID"],
                              before=_diff_text(before), after=_diff_text(after))
    if not changed or module.check_mode:
        return result
    resp = conn.register(job) or {}
    result["eval_id"] = resp.get("EvalID", "")
    if resp.get("Warnings"):
        result["warnings_from_nomad"] = resp["Warnings"]
    if params["wait"] and needs_deployment(job):
        result["deployment"] = wait_for_deployment(conn, job, result["eval_id"], params["wait_timeout"])
    return result


def absent(module, conn):
    params = module.params
    job_id = params["name"]
    if not job_id:
        content = params["content"]
        if content is None:
            raise NomadError("name: required with state=absent when no content is given")
        job, _fmt = load_job(conn, content, params["content_format"], render_variables(params["variables"]))
        job_id = job["ID"]
    current = conn.get_job(job_id)
    purge = params["purge"]
    result = dict(changed=False, job_id=job_id, diff_type="None", changes=[])
    if current is None or (current.get("Stop") and not purge):
        return result
    before = {"Status": current.get("Status"), "Stop": str(bool(current.get("Stop"))).lower(),
              "Version": str(current.get("Version"))}
    after = {} if purge else {"Status": "dead", "Stop": "true", "Version": str(current.get("Version"))}
    changes = diff_to_text(before, after).splitlines()
    result.update(changed=True, diff_type="Deleted", changes=changes)
    if module._diff:
        result["diff"] = dict(before_header="nomad job %s" % job_id, after_header="nomad job %s" % job_id,
                              before=_diff_text(before), after=_diff_text(after))
    if module.check_mode:
        return result
    resp = conn.deregister(job_id, purge) or {}
    result["eval_id"] = resp.get("EvalID", "")
    return result


def _diff_text(values):
    return "".join("%s: %s\n" % (k, values[k]) for k in sorted(values))


def main():
    argument_spec = dict(CONNECTION_ARGSPEC)
    argument_spec.update(
        name=dict(type="str", aliases=["id"]),
        content=dict(type="raw"),
        content_format=dict(type="str", choices=["auto", "hcl", "json"], default="auto"),
        variables=dict(type="dict"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        purge=dict(type="bool", default=False),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params["wait_timeout"] < 0:
        module.fail_json(msg="wait_timeout: must not be negative")
    conn = NomadConnection(module)
    try:
        if module.params["state"] == "present":
            result = present(module, conn)
        else:
            result = absent(module, conn)
    except NomadError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
