#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: directories
short_description: Ensure a list of directories exists, with owner, group and mode, in one module run
version_added: "0.1.0"
description:
  - Ensures that every item of O(directories) is a directory with the given attributes, in list order, as
    M(ansible.builtin.file) with O(ansible.builtin.file#module:state=directory) does for one path.
  - One run handles the whole list, so a role that ensures many directories pays the cost of one module run
    (about 0.2 s over a docker or SSH connection) instead of one per directory.
  - Missing parents are created too, each with the item's attributes, as M(ansible.builtin.file) does.
  - Modes, owners and groups are compared and set with the same helpers M(ansible.builtin.file) uses, so a
    symbolic or octal mode means exactly what it means there.
  - A link is followed, as M(ansible.builtin.file) follows it by default; the directory it points to is
    managed.
  - It never removes or replaces anything and does not recurse into existing directories. Every item is
    checked first (absolute path, nothing but a directory at the path or in the way of its parents, known
    owner and group, well-formed mode); on the first problem it fails naming C(directories[i].<field>) before
    anything has changed.
author:
  - selfhost.homelab contributors (@selfhost)
attributes:
  check_mode:
    support: full
    description: Reports which directories would be created or changed, and how; changes nothing.
    details: An owner or group that does not exist yet is not an error in check mode (an earlier task that
      check mode did not run would make it, as a role's user task does); the item is reported as changing.
  diff_mode:
    support: full
    description: One before/after per changed path (state, mode, owner, group), as M(ansible.builtin.file) shows.
  idempotent:
    support: full
    description: C(changed) only when a directory is created or an attribute differs.
options:
  directories:
    description: The directories, handled in this order.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the directory.
        type: path
        required: true
      owner:
        description: Name or ID of the user that should own it (and the parents this run creates).
        type: str
      group:
        description: Name or ID of the group that should own it (and the parents this run creates).
        type: str
      mode:
        description:
          - Permissions, as for M(ansible.builtin.file)'s O(ansible.builtin.file#module:mode) (quote octal
            modes, V('0755'), or give a symbolic mode, V(u=rwx,g=rx,o=)).
          - Unset leaves an existing directory's mode alone; a new one gets the host's default (umask).
        type: raw
      seuser:
        description: SELinux user part of the context, as for M(ansible.builtin.file).
        type: str
      serole:
        description: SELinux role part of the context, as for M(ansible.builtin.file).
        type: str
      setype:
        description: SELinux type part of the context, as for M(ansible.builtin.file).
        type: str
      selevel:
        description: SELinux level part of the context, as for M(ansible.builtin.file).
        type: str
      attributes:
        description:
          - File attributes (C(chattr)), as for M(ansible.builtin.file).
          - Not checked before the run starts; an attribute the file system refuses fails at that item.
        type: str
notes:
  - There is no O(ansible.builtin.file#module:recurse); use M(ansible.builtin.file) to fix a whole tree.
seealso:
  - module: ansible.builtin.file
"""

EXAMPLES = r"""
- name: Create the backup role's directories in one run
  selfhost.homelab.directories:
    directories:
      - {path: /etc/homelab-backup, mode: "0750"}
      - {path: /var/lib/homelab-backup, mode: "0700"}
      - {path: /srv/scratch/restic-cache, owner: nobody, group: nogroup, mode: "u=rwx,g=rx,o="}

- name: Directories from a list variable of {path, owner, group, mode} items
  selfhost.homelab.directories:
    directories: "{{ myapp_directories }}"
"""

RETURN = r"""
directories:
  description:
    - One entry per item, in order, with the attributes after the run (in check mode, those the run would
      leave; for a directory yet to be created, unset attributes are null).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The item's path.
      type: str
    dest:
      description: The directory managed, when O(directories[].path) is a link to it.
      type: str
      returned: when the path is a link
    changed:
      description: Whether this item was created or changed.
      type: bool
    created:
      description: Directories this item created (missing parents first, then the path itself).
      type: list
      elements: str
    state:
      description: V(directory).
      type: str
    mode:
      description: Permissions in octal, such as V(0755).
      type: str
    owner:
      description: Owner's name (its ID when it has no name).
      type: str
    group:
      description: Group's name (its ID when it has no name).
      type: str
    uid:
      description: Owner's ID.
      type: int
    gid:
      description: Group's ID.
      type: int
  sample:
    - {path: /etc/homelab-backup, changed: true, created: [/etc/homelab-backup], state: directory, mode: "0750",
       owner: root, group: root, uid: 0, gid: 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.homelab.plugins.module_utils._directories import (
    DirectoriesError,
    ensure_all,
    inspect,
)

ARGUMENT_SPEC = dict(
    directories=dict(type="list", elements="dict", required=True, options=dict(
        path=dict(type="path", required=True),
        owner=dict(type="str"),
        group=dict(type="str"),
        mode=dict(type="raw"),
        seuser=dict(type="str"),
        serole=dict(type="str"),
        setype=dict(type="str"),
        selevel=dict(type="str"),
        attributes=dict(type="str"),
    )),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        plans = inspect(AnsibleModule, module.params["directories"], check_mode=module.check_mode)
    except DirectoriesError as exc:
        module.fail_json(msg=str(exc))
    changed, results, diffs = ensure_all(module, plans)
    result = dict(changed=changed, directories=results)
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
