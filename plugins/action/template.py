# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of selfhost.homelab.template: ansible.builtin.template, an unchanged file checked in one module run.

ansible.builtin.template renders on the controller and hands the result to the
copy action it loads as ``ansible.legacy.copy``; here that copy is
selfhost.homelab.copy's (plugin_utils/_unchanged_file.py), and everything else
is the builtin template action as it is.
"""

from __future__ import annotations

from ansible.plugins.action.template import ActionModule as BuiltinTemplate

COPY_ACTION = "selfhost.homelab.copy"


class _ActionLoader:
    """The real action loader, except that ansible.legacy.copy is ours."""

    def __init__(self, real):
        self._real = real

    def get(self, name, *args, **kwargs):
        if name == "ansible.legacy.copy":
            name = COPY_ACTION
        return self._real.get(name, *args, **kwargs)

    def __getattr__(self, attr):
        return getattr(self._real, attr)


class _Loaders:
    """The shared plugin loaders, with the action loader above."""

    def __init__(self, real):
        self._real = real
        self.action_loader = _ActionLoader(real.action_loader)

    def __getattr__(self, attr):
        return getattr(self._real, attr)


class ActionModule(BuiltinTemplate):
    # The copy action makes the remote temporary directory when it transfers a file
    # (and this action's run removes it at the end, as the builtin does).
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        real = self._shared_loader_obj
        self._shared_loader_obj = _Loaders(real)
        try:
            return super().run(tmp, task_vars)
        finally:
            self._shared_loader_obj = real
