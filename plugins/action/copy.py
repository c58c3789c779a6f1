# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of selfhost.homelab.copy: ansible.builtin.copy, with an unchanged file checked in one module run.

See plugin_utils/_unchanged_file.py.
"""

from __future__ import annotations

from ansible_collections.selfhost.homelab.plugins.plugin_utils._unchanged_file import FastCopy


class ActionModule(FastCopy):
    pass
