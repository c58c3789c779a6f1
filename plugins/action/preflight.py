# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of selfhost.homelab.preflight: the whole inventory, checked on the controller.

It reads every host's variables through ``hostvars`` (templated in that
host's context, ansible-vault values decrypted), never connects to a host,
and hands them to plugin_utils/_preflight.py.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.selfhost.homelab.plugins.plugin_utils._preflight import (
    STACK_GROUPS,
    VARIABLES,
    check_inventory,
)


def _plain(value):
    """Templated values as plain Python data (ansible-vault values decrypted)."""
    if isinstance(value, dict):
        return {to_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return to_text(value)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("fail_on_warnings",))
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        fail_on_warnings = bool(args.get("fail_on_warnings", False))
        groups = {name: list(members) for name, members in (task_vars.get("groups") or {}).items()}
        hostvars = task_vars.get("hostvars") or {}
        names = set(groups.get("homelab") or [])
        for group in STACK_GROUPS:
            names.update(groups.get(group) or [])
        hosts, unreadable = {}, []
        for host in sorted(names):
            values = {}
            try:
                host_vars = hostvars[host]
            except (KeyError, AnsibleError) as exc:
                unreadable.append("%s: its variables cannot be read: %s" % (host, to_text(exc)))
                continue
            for name in VARIABLES:
                if name not in host_vars:
                    continue
                try:
                    values[name] = _plain(host_vars[name])
                except Exception as exc:  # any templating error names the variable
                    unreadable.append("%s: %s: cannot be evaluated: %s" % (host, name, to_text(exc).splitlines()[0]))
            hosts[host] = values
        problems, warnings = check_inventory(groups, hosts)
        problems = unreadable + problems
        if fail_on_warnings:
            problems, warnings = problems + warnings, []
        result.update(changed=False, problems=problems, checked_hosts=sorted(hosts))
        if warnings:
            result["warnings"] = list(warnings)
        if problems:
            result["failed"] = True
            result["msg"] = ("The inventory has %d problem%s (listed under problems: host or groups, variable, "
                             "what is wrong); no host was touched" % (len(problems), "" if len(problems) == 1 else "s"))
        else:
            result["msg"] = "The inventory of %d host%s passes the preflight" % (
                len(hosts), "" if len(hosts) == 1 else "s")
        return result
