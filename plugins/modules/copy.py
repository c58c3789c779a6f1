#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The documentation of an action plugin (plugins/action/copy.py); the work is done by ansible.builtin.copy's
# action and modules, or by selfhost.homelab.file_state for a file that is already right.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: copy
short_description: ansible.builtin.copy, with a file that is already right checked in one module run
version_added: "0.1.0"
description:
  - Takes the options of M(ansible.builtin.copy) and does what it does. The difference is the cost of a file that
    is already right, one module run (M(selfhost.homelab.file_state)) instead of two (M(ansible.builtin.stat), then
    M(ansible.builtin.file) for owner, group and mode).
  - When the content or an attribute differs, or with O(force=false), O(remote_src=true), O(mode=preserve) or
    O(checksum), the builtin action runs unchanged and writes, validates, backs up and reports the diff exactly as
    M(ansible.builtin.copy) does (after that one extra module run when the check applied).
author:
  - selfhost.homelab contributors (@selfhost-homelab)
extends_documentation_fragment:
  - ansible.builtin.decrypt
  - ansible.builtin.files
  - ansible.builtin.validate
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed
      on the controller.
    support: full
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: partial
    details: As M(ansible.builtin.copy) (no diff for a directory copied recursively).
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
options:
  src:
    description:
      - The file (or directory) on the controller to copy, or with O(remote_src=true) on the managed host; as
        M(ansible.builtin.copy).
    type: path
  content:
    description:
      - The content to write instead of O(src); as M(ansible.builtin.copy).
    type: str
  dest:
    description:
      - Where to write it on the managed host.
    type: path
    required: true
  backup:
    description:
      - Keep a timestamped copy of the old file when it is replaced.
    type: bool
    default: false
  force:
    description:
      - Replace a file whose content differs. With V(false) a file that exists is left alone.
    type: bool
    default: true
  directory_mode:
    description:
      - The mode of directories made by a recursive copy; as M(ansible.builtin.copy).
    type: raw
  remote_src:
    description:
      - O(src) is on the managed host.
    type: bool
    default: false
  local_follow:
    description:
      - Follow symbolic links in O(src) on the controller.
    type: bool
  checksum:
    description:
      - The SHA-1 checksum the transferred file must have; as M(ansible.builtin.copy).
    type: str
  follow:
    description:
      - Whether to follow a symbolic link at O(dest) and write the file it points to.
    type: bool
    default: false
seealso:
  - module: ansible.builtin.copy
  - module: selfhost.homelab.template
  - module: selfhost.homelab.file_state
"""

EXAMPLES = r"""
- name: Keep forwarding on across reboots
  selfhost.homelab.copy:
    content: "net.ipv4.ip_forward = 1\n"
    dest: /etc/sysctl.d/90-homelab-forward.conf
    owner: root
    group: root
    mode: "0644"
"""

RETURN = r"""
dest:
  description: The file written or checked.
  returned: success
  type: str
  sample: /etc/sysctl.d/90-homelab-forward.conf
checksum:
  description: The SHA-1 checksum of the content.
  returned: success
  type: str
  sample: 6d8ef2a7c1e4b0fb3b2e6f4a0f3b0c1d2e3f4a5b
mode:
  description: The file's permission bits, in octal.
  returned: success
  type: str
  sample: "0644"
owner:
  description: The file's owner.
  returned: success
  type: str
  sample: root
group:
  description: The file's group.
  returned: success
  type: str
  sample: root
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path"},
            "content": {"type": "str", "no_log": True},
            "dest": {"type": "path", "required": True},
            "backup": {"type": "bool", "default": False},
            "force": {"type": "bool", "default": True},
            "validate": {"type": "str"},
            "directory_mode": {"type": "raw"},
            "remote_src": {"type": "bool", "default": False},
            "local_follow": {"type": "bool"},
            "checksum": {"type": "str"},
            "follow": {"type": "bool", "default": False},
            "decrypt": {"type": "bool", "default": True},
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    module.fail_json(msg="selfhost.homelab.copy runs through its action plugin; call it as a task, not as a module")


if __name__ == "__main__":
    main()
