#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The documentation of an action plugin (plugins/action/template.py); the work is done on the controller
# and by ansible.builtin.copy's modules, or by selfhost.homelab.file_state for a file that is already right.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: template
short_description: ansible.builtin.template, with a file that is already right checked in one module run
version_added: "0.1.0"
description:
  - Takes the options of M(ansible.builtin.template) and does what it does. The difference is the cost of a
    file that is already right, one module run (M(selfhost.homelab.file_state)) instead of two
    (M(ansible.builtin.stat), then M(ansible.builtin.file) for owner, group and mode).
  - When the content or an attribute differs, or with O(force=false), the builtin action runs unchanged and
    writes, validates, backs up and reports the diff exactly as M(ansible.builtin.template) does, after that one
    extra module run.
  - The roles of this collection write their configuration files with it, so that an idempotent re-run of the whole
    stack costs about a module run less per file.
author:
  - selfhost.homelab contributors (@selfhost-homelab)
extends_documentation_fragment:
  - ansible.builtin.backup
  - ansible.builtin.files
  - ansible.builtin.template_common
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
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
options:
  follow:
    description:
      - Whether to follow a symbolic link at O(dest) and write the file it points to, as M(ansible.builtin.template).
    type: bool
    default: false
seealso:
  - module: ansible.builtin.template
  - module: selfhost.homelab.copy
  - module: selfhost.homelab.file_state
"""

EXAMPLES = r"""
- name: Write Consul's agent configuration
  selfhost.homelab.template:
    src: consul.hcl.j2
    dest: /etc/consul.d/consul.hcl
    owner: root
    group: consul
    mode: "0640"
    validate: consul validate %s
"""

RETURN = r"""
dest:
  description: The file written or checked.
  returned: success
  type: str
  sample: /etc/consul.d/consul.hcl
checksum:
  description: The SHA-1 checksum of the rendered content.
  returned: success
  type: str
  sample: 6d8ef2a7c1e4b0fb3b2e6f4a0f3b0c1d2e3f4a5b
mode:
  description: The file's permission bits, in octal.
  returned: success
  type: str
  sample: "0640"
owner:
  description: The file's owner.
  returned: success
  type: str
  sample: root
group:
  description: The file's group.
  returned: success
  type: str
  sample: consul
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "backup": {"type": "bool", "default": False},
            "force": {"type": "bool", "default": True},
            "follow": {"type": "bool", "default": False},
            "validate": {"type": "str"},
            "newline_sequence": {"type": "str", "default": "\\n", "choices": ["\\n", "\\r", "\\r\\n"]},
            "block_start_string": {"type": "str", "default": "{%"},
            "block_end_string": {"type": "str", "default": "%}"},
            "variable_start_string": {"type": "str", "default": "{{"},
            "variable_end_string": {"type": "str", "default": "}}"},
            "comment_start_string": {"type": "str"},
            "comment_end_string": {"type": "str"},
            "trim_blocks": {"type": "bool", "default": True},
            "lstrip_blocks": {"type": "bool", "default": False},
            "output_encoding": {"type": "str", "default": "utf-8"},
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    module.fail_json(msg="selfhost.homelab.template runs through its action plugin; call it as a task, not as a module")


if __name__ == "__main__":
    main()
