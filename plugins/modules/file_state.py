#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: file_state
short_description: Tell whether a file already has a given content and attributes, changing nothing
version_added: "0.1.0"
description:
  - Reads one file and answers whether its content has the given SHA-1 checksum and whether its owner, group,
    mode, SELinux context and attributes are already the given ones. It never changes the file.
  - The attributes are compared as M(ansible.builtin.file) compares them (symbolic and octal modes, owner and
    group by name or id), in one read.
  - The collection's M(selfhost.homelab.template) and M(selfhost.homelab.copy) run it first, so that an
    unchanged file costs one module run instead of two (M(ansible.builtin.stat), then M(ansible.builtin.file)).
author:
  - selfhost.homelab contributors (@selfhost-homelab)
extends_documentation_fragment:
  - ansible.builtin.files
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: It never changes anything, in any mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
options:
  path:
    description: The file to read.
    type: path
    required: true
  checksum:
    description: The SHA-1 checksum (40 hex digits) the content should have.
    type: str
    required: true
  follow:
    description:
      - When O(path) is a symbolic link, read the file it points to.
      - Without it, a link never matches (the caller then replaces it, as M(ansible.builtin.copy) does).
    type: bool
    default: false
seealso:
  - module: selfhost.homelab.template
  - module: selfhost.homelab.copy
"""

EXAMPLES = r"""
- name: Is the unit file already what we would write?
  selfhost.homelab.file_state:
    path: /etc/systemd/system/consul.service
    checksum: "{{ lookup('ansible.builtin.template', 'consul.service.j2') | ansible.builtin.hash('sha1') }}"
    owner: root
    group: root
    mode: "0644"
  register: unit
"""

RETURN = r"""
matches:
  description: Whether the file exists, is a regular file, has the checksum and already has every given attribute.
  returned: always
  type: bool
  sample: true
content_matches:
  description: Whether the file exists, is a regular file and has the checksum (attributes not considered).
  returned: always
  type: bool
  sample: true
exists:
  description: Whether O(path) exists (after following a link when O(follow=true)).
  returned: always
  type: bool
  sample: true
path:
  description: The file that was read (the link's target when O(follow=true) and O(path) is a link).
  returned: always
  type: str
  sample: /etc/systemd/system/consul.service
state:
  description: What the path is (V(file), V(directory), V(link), V(hard)), as M(ansible.builtin.file) reports it.
  returned: when O(path) exists
  type: str
  sample: file
owner:
  description: The file's owner.
  returned: when O(path) exists
  type: str
  sample: root
group:
  description: The file's group.
  returned: when O(path) exists
  type: str
  sample: root
uid:
  description: The file's owner id.
  returned: when O(path) exists
  type: int
  sample: 0
gid:
  description: The file's group id.
  returned: when O(path) exists
  type: int
  sample: 0
mode:
  description: The file's permission bits, in octal.
  returned: when O(path) exists
  type: str
  sample: "0644"
size:
  description: The file's size in bytes.
  returned: when O(path) exists
  type: int
  sample: 512
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "checksum": {"type": "str", "required": True},
            "follow": {"type": "bool", "default": False},
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    path = module.params["path"]
    wanted = module.params["checksum"]
    if len(wanted) != 40 or any(c not in "0123456789abcdefABCDEF" for c in wanted):
        module.fail_json(msg="checksum: must be a SHA-1 checksum of 40 hex digits, got %r" % wanted)

    b_path = to_bytes(path, errors="surrogate_or_strict")
    if module.params["follow"] and os.path.islink(b_path):
        b_path = os.path.realpath(b_path)
        path = to_native(b_path, errors="surrogate_or_strict")

    result = {"changed": False, "path": path, "exists": os.path.lexists(b_path),
              "matches": False, "content_matches": False}
    if not result["exists"]:
        module.exit_json(**result)
    module.add_path_info(result)
    if result["state"] != "file":
        module.exit_json(**result)

    result["content_matches"] = module.sha1(path) == wanted.lower()
    if result["content_matches"]:
        # Compared exactly as ansible.builtin.file compares them; in check mode the
        # set_*_if_different helpers only report a difference and change nothing.
        file_args = module.load_file_common_arguments(module.params, path=path)
        module.check_mode = True
        result["matches"] = not module.set_fs_attributes_if_different(file_args, False, expand=False)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
