#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nomad_host_volume
short_description: Register, update or delete a Nomad dynamic host volume
version_added: "0.1.0"
description:
  - Manages one Nomad dynamic host volume (Nomad >= 1.10), identified by its O(name) on its node in the namespace.
  - With O(host_path), registers an existing directory of the node (a ZFS dataset's mountpoint, say) as the volume
    (C(PUT /v1/volume/host/register)). With O(plugin_id), lets a volume plugin create it
    (C(PUT /v1/volume/host/create); Nomad's built-in plugin is V(mkdir)).
  - An existing volume whose managed fields differ is updated in place (same ID); O(state=absent) deletes it.
  - Jobs then use it with a group C(volume) block of C(type = "host") and C(source = <name>).
author:
  - selfhost.homelab contributors (@selfhost)
extends_documentation_fragment:
  - selfhost.homelab.nomad
attributes:
  check_mode:
    support: full
    description: Reads the volume and reports what would change; writes nothing.
  diff_mode:
    support: full
    description: Shows the managed fields before and after.
  idempotent:
    support: full
    description: C(changed) only when a managed field differs, or the volume is created or deleted.
options:
  name:
    description: Name of the volume (what a job's C(volume) block names as C(source)).
    type: str
    required: true
  state:
    description: V(present) registers or creates (and updates) the volume; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  node_id:
    description:
      - ID of the node the volume lives on.
      - Defaults to the node of the Nomad agent at O(address) (C(stats.client.node_id) of C(/v1/agent/self)), the
        right one for a single-box setup where the module talks to the local agent.
    type: str
  node_pool:
    description: Node pool of the volume; Nomad's default when unset.
    type: str
  host_path:
    description:
      - Absolute path on the node to register as the volume. It must exist on the node.
      - Mutually exclusive with O(plugin_id); one of them is required with O(state=present).
    type: path
  plugin_id:
    description: Volume plugin that creates the volume (V(mkdir) is built in).
    type: str
  capacity_min:
    description: Requested minimum capacity, bytes or a size such as V(10GiB) or V(500MB).
    type: raw
  capacity_max:
    description: Requested maximum capacity, as O(capacity_min).
    type: raw
  capabilities:
    description: Access and attachment modes the volume allows; a job's C(volume) block must ask for one of them.
    type: list
    elements: dict
    default: [{access_mode: single-node-writer, attachment_mode: file-system}]
    suboptions:
      access_mode:
        description: Access mode.
        type: str
        required: true
        choices: [single-node-reader-only, single-node-writer, single-node-single-writer, single-node-multi-writer]
      attachment_mode:
        description: Attachment mode.
        type: str
        choices: [file-system, block-device]
        default: file-system
  parameters:
    description: Parameters passed to the plugin (string values).
    type: dict
seealso:
  - module: selfhost.homelab.nomad_job
  - name: Nomad dynamic host volumes API
    description: The endpoints this module calls.
    link: https://developer.hashicorp.com/nomad/api-docs/volumes#host-volumes
"""

EXAMPLES = r"""
- name: Register PhotoPrism's dataset as a host volume on the local node
  selfhost.homelab.nomad_host_volume:
    name: photoprism-data
    host_path: /srv/homelab/photoprism

- name: A read-only volume over another app's folder
  selfhost.homelab.nomad_host_volume:
    name: photoprism-originals-anna
    host_path: /srv/homelab/nextcloud/data/anna/files/Photos
    capabilities:
      - access_mode: single-node-reader-only

- name: Let Nomad's mkdir plugin create a scratch volume
  selfhost.homelab.nomad_host_volume:
    name: cache
    plugin_id: mkdir
    capacity_max: 20GiB

- name: Remove a volume
  selfhost.homelab.nomad_host_volume:
    name: photoprism-old
    state: absent
"""

RETURN = r"""
volume:
  description: The volume as Nomad answers it after the change (or as planned in check mode).
  returned: when O(state=present)
  type: dict
  sample: {"ID": "9d5b...", "Name": "photoprism-data", "NodeID": "7f1c...", "HostPath": "/srv/homelab/photoprism",
           "State": "ready"}
volume_id:
  description: ID of the volume (empty when it is yet to be created in check mode).
  returned: always
  type: str
node_id:
  description: The node the volume is on.
  returned: always
  type: str
changes:
  description: Names of the managed fields that differ (all of them for a new volume).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.homelab.plugins.module_utils._nomad import (
    CONNECTION_ARGSPEC,
    NomadConnection,
    NomadError,
)
from ansible_collections.selfhost.homelab.plugins.module_utils._nomad_host_volume import (
    ACCESS_MODES,
    ATTACHMENT_MODES,
    HostVolumes,
    desired_volume,
    differences,
    summary,
)


def run(module, conn):
    params = module.params
    api = HostVolumes(conn)
    if params["state"] == "present":
        # Validate everything before the first request that could change anything.
        desired = desired_volume(params, params["node_id"] or "(local node)")
    node_id = params["node_id"] or api.local_node_id()
    current = api.find(params["name"], node_id)
    result = dict(changed=False, node_id=node_id, volume_id=(current or {}).get("ID", ""), changes=[])
    if params["state"] == "absent":
        if current is None:
            return result
        result.update(changed=True, changes=["deleted"])
        if module._diff:
            result["diff"] = dict(before=summary(current), after="")
        if not module.check_mode:
            api.delete(current["ID"])
        return result
    desired["NodeID"] = node_id
    changes = differences(current, desired)
    result["changes"] = changes
    if current is not None:
        desired["ID"] = current["ID"]
    planned = dict(current or {}, **desired)
    if module._diff:
        result["diff"] = dict(before_header="host volume %s" % params["name"], after_header="host volume %s"
                              % params["name"], before=summary(current), after=summary(planned))
    if not changes:
        result["volume"] = current
        return result
    result["changed"] = True
    if module.check_mode:
        result["volume"] = planned
        return result
    answer = api.write(desired, create=bool(params["plugin_id"]))
    result["volume"] = answer.get("Volume") or planned
    result["volume_id"] = result["volume"].get("ID", "")
    if answer.get("Warnings"):
        module.warn("Nomad: %s" % answer["Warnings"])
    return result


def main():
    argument_spec = dict(CONNECTION_ARGSPEC)
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        node_id=dict(type="str"),
        node_pool=dict(type="str"),
        host_path=dict(type="path"),
        plugin_id=dict(type="str"),
        capacity_min=dict(type="raw"),
        capacity_max=dict(type="raw"),
        capabilities=dict(type="list", elements="dict", default=[{"access_mode": "single-node-writer",
                                                                  "attachment_mode": "file-system"}],
                          options=dict(access_mode=dict(type="str", required=True, choices=list(ACCESS_MODES)),
                                       attachment_mode=dict(type="str", choices=list(ATTACHMENT_MODES),
                                                            default="file-system"))),
        parameters=dict(type="dict"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[("host_path", "plugin_id")])
    conn = NomadConnection(module)
    try:
        result = run(module, conn)
    except NomadError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
