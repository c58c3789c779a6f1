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
  - With O(volumes) instead of O(name), manages many volumes of one node in one module run (one task, one
    round trip of Ansible instead of one per loop item). Every item is checked before the first request; then
    the module reads with ONE list request (C(GET /v1/volumes?type=host&node_id=...), prefix the names' common
    prefix) plus, with O(state=present), one C(GET /v1/volume/host/:id) per named volume that exists (the list
    has no host path or capabilities to compare), and writes only the volumes that differ (one C(PUT) each) or,
    with O(state=absent), deletes those that exist (one C(DELETE) each; in diff mode also one C(GET) each for the
    diff). Add C(GET /v1/agent/self) without O(node_id). A re-run with nothing to change is 1 list + one read per
    volume.
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
    description:
      - Name of the volume (what a job's C(volume) block names as C(source)).
      - One of O(name) and O(volumes) is required.
    type: str
  volumes:
    description:
      - Many volumes on the node at once, each with the per-volume options of the single mode; O(state),
        O(node_id) and O(node_pool) apply to all of them.
      - Mutually exclusive with O(name), O(host_path), O(plugin_id), O(capacity_min), O(capacity_max),
        O(capabilities) and O(parameters).
      - "Every item is validated before the first request; an error names the item, as in
        C(volumes[2].host_path: ...). Names must be unique in the list."
      - With O(state=absent) only each item's O(volumes[].name) is used.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the volume, as O(name).
        type: str
        required: true
      host_path:
        description: As O(host_path); one of it and O(volumes[].plugin_id) with O(state=present).
        type: path
      plugin_id:
        description: As O(plugin_id).
        type: str
      capacity_min:
        description: As O(capacity_min).
        type: raw
      capacity_max:
        description: As O(capacity_max).
        type: raw
      capabilities:
        description: As O(capabilities).
        type: list
        elements: dict
        default: [{access_mode: single-node-writer, attachment_mode: file-system}]
        suboptions:
          access_mode:
            description: Access mode.
            type: str
            required: true
            choices: [single-node-reader-only, single-node-writer, single-node-single-writer,
                      single-node-multi-writer]
          attachment_mode:
            description: Attachment mode.
            type: str
            choices: [file-system, block-device]
            default: file-system
      parameters:
        description: As O(parameters).
        type: dict
  state:
    description: V(present) registers or creates (and updates) the volume; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  node_id:
    description:
      - ID of the node the volume (or all of O(volumes)) lives on.
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

- name: Register all of an app's volumes in one task
  selfhost.homelab.nomad_host_volume:
    volumes:
      - name: photoprism-data
        host_path: /srv/homelab/photoprism
      - name: photoprism-originals-anna
        host_path: /srv/homelab/nextcloud/data/anna/files/Photos
        capabilities:
          - access_mode: single-node-reader-only

- name: Remove them again (the directories stay)
  selfhost.homelab.nomad_host_volume:
    volumes:
      - name: photoprism-data
      - name: photoprism-originals-anna
    state: absent
"""

RETURN = r"""
volume:
  description: The volume as Nomad answers it after the change (or as planned in check mode).
  returned: when O(name) is given and O(state=present)
  type: dict
  sample: {"ID": "9d5b...", "Name": "photoprism-data", "NodeID": "7f1c...", "HostPath": "/srv/homelab/photoprism",
           "State": "ready"}
volume_id:
  description: ID of the volume (empty when it is yet to be created in check mode).
  returned: when O(name) is given
  type: str
node_id:
  description: The node the volume (or all of O(volumes)) is on.
  returned: always
  type: str
changes:
  description: Names of the managed fields that differ (all of them for a new volume).
  returned: when O(name) is given
  type: list
  elements: str
volumes:
  description:
    - With O(volumes), one result per item, in the order given; the overall C(changed) is true when any is.
    - When a write fails after others were made, the module fails with these results; the failed item has
      RV(volumes[].error) and it and the items after it have RV(volumes[].changed=false).
  returned: when O(volumes) is given
  type: list
  elements: dict
  contains:
    name:
      description: Name of the volume.
      type: str
      returned: always
    changed:
      description: Whether this volume was (or in check mode would be) registered, updated or deleted.
      type: bool
      returned: always
    volume_id:
      description: ID of the volume (empty when it does not exist, or is yet to be created in check mode).
      type: str
      returned: always
    changes:
      description: Names of the managed fields that differ, or V(deleted).
      type: list
      elements: str
      returned: always
    volume:
      description: The volume as Nomad answers it after the change (or as planned in check mode).
      type: dict
      returned: with O(state=present)
    error:
      description: Why the write of this volume failed.
      type: str
      returned: on a failed write
  sample: [{"name": "photoprism-data", "changed": false, "volume_id": "9d5b...", "changes": []}]
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
    run_many,
    run_single,
)

PER_VOLUME = ("host_path", "plugin_id", "capacity_min", "capacity_max", "capabilities", "parameters")


def _capabilities_spec():
    return dict(type="list", elements="dict", default=[{"access_mode": "single-node-writer",
                                                        "attachment_mode": "file-system"}],
                options=dict(access_mode=dict(type="str", required=True, choices=list(ACCESS_MODES)),
                             attachment_mode=dict(type="str", choices=list(ATTACHMENT_MODES), default="file-system")))


def main():
    argument_spec = dict(CONNECTION_ARGSPEC)
    per_volume = dict(
        host_path=dict(type="path"),
        plugin_id=dict(type="str"),
        capacity_min=dict(type="raw"),
        capacity_max=dict(type="raw"),
        capabilities=_capabilities_spec(),
        parameters=dict(type="dict"),
    )
    argument_spec.update(
        name=dict(type="str"),
        volumes=dict(type="list", elements="dict", options=dict(name=dict(type="str", required=True), **per_volume)),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        node_id=dict(type="str"),
        node_pool=dict(type="str"),
        **per_volume
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[("name", "volumes")],
                           mutually_exclusive=[("host_path", "plugin_id"), ("name", "volumes")]
                           + [("volumes", option) for option in PER_VOLUME])
    conn = NomadConnection(module)
    api = HostVolumes(conn)
    try:
        result = run_many(module, api) if module.params["volumes"] is not None else run_single(module, api)
    except NomadError as exc:
        module.fail_json(msg=str(exc), **getattr(exc, "result", {}))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
