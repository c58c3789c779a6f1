#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_job_info
short_description: Read a Nomad job with its allocations and latest deployment, or list jobs
version_added: "0.1.0"
description:
  - With O(name), returns the job, its allocations and its latest deployment; C(exists=false) when there is none.
  - Without O(name), lists the jobs of the namespace (optionally by ID prefix).
author:
  - selfhost.homelab contributors (@selfhost)
extends_documentation_fragment:
  - selfhost.homelab.nomad
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Reads only.
  idempotent:
    support: full
    description: Never changes anything.
options:
  name:
    description:
      - ID of the job to read.
    type: str
    aliases: [id]
  prefix:
    description:
      - Without O(name), list only jobs whose ID starts with this.
    type: str
    default: ""
seealso:
  - module: selfhost.homelab.nomad_job
"""

EXAMPLES = r"""
- name: Read the traefik job
  selfhost.homelab.nomad_job_info:
    name: traefik
  register: __traefik

- name: Show how many allocations run
  ansible.builtin.debug:
    msg: "{{ __traefik.allocations | selectattr('ClientStatus', 'eq', 'running') | length }} running"

- name: List backup jobs
  selfhost.homelab.nomad_job_info:
    prefix: backup-
"""

RETURN = r"""
exists:
  description: Whether the job exists (with O(name)).
  returned: with O(name)
  type: bool
job:
  description: The job as Nomad returns it.
  returned: with O(name), when it exists
  type: dict
allocations:
  description: The job's allocations (stubs as C(/v1/job/:id/allocations) returns them).
  returned: with O(name), when it exists
  type: list
  elements: dict
deployment:
  description: The job's latest deployment, or null.
  returned: with O(name), when it exists
  type: dict
jobs:
  description: Job stubs of the namespace.
  returned: without O(name)
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.homelab.plugins.module_utils._nomad import (
    CONNECTION_ARGSPEC,
    NomadConnection,
    NomadError,
)


def main():
    argument_spec = dict(CONNECTION_ARGSPEC)
    argument_spec.update(name=dict(type="str", aliases=["id"]), prefix=dict(type="str", default=""))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    conn = NomadConnection(module)
    name = module.params["name"]
    try:
        if not name:
            jobs = conn.call("list jobs", conn.client.jobs.get_jobs, prefix=module.params["prefix"] or None)
            module.exit_json(changed=False, jobs=jobs or [])
        job = conn.get_job(name)
        if job is None:
            module.exit_json(changed=False, exists=False)
        module.exit_json(changed=False, exists=True, job=job, allocations=conn.allocations(name),
                         deployment=conn.latest_deployment(name))
    except NomadError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
