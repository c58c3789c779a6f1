# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one-round-trip check behind selfhost.homelab.copy and selfhost.homelab.template.

ansible.builtin.copy (and template, which renders and then copies) costs two
module runs for a file that is already right: a stat for the checksum, then
the file module for owner, group and mode. On a re-run of the whole stack
those pairs are a large share of the time, and so are the three commands
the builtin runs first to make a remote temporary directory (its home
directory, mkdir, and rm at the end). Here one module run
(selfhost.homelab.file_state) answers both questions and no temporary
directory is made; only when the file is
NOT already right does the builtin action run, unchanged, and do the work
(write, validate, diff, check mode, backup) exactly as it always does.
"""

from __future__ import annotations

from ansible.errors import AnsibleFileNotFound
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action.copy import ActionModule as BuiltinCopy
from ansible.utils.hashing import checksum

# The task options file_state compares (ansible.builtin.file's common arguments).
ATTRIBUTE_OPTIONS = ("mode", "owner", "group", "seuser", "serole", "selevel", "setype", "attributes", "attr")
STATE_MODULE = "selfhost.homelab.file_state"


class FastCopy(BuiltinCopy):
    """ansible.builtin.copy with a one-module-run path for a file that is already right."""

    # The builtin makes a remote temporary directory before anything else (three more
    # commands on the host: find the home directory, mkdir, rm at the end). A file that is
    # already right needs none; the directory is made only when a file is transferred.
    TRANSFERS_FILES = False

    def _fast_path_applies(self, dest):
        args = self._task.args
        return (
            boolean(args.get("force", True), strict=False)
            and not boolean(args.get("raw", False), strict=False)
            and args.get("mode") != "preserve"
            and not args.get("checksum")
            and not self._connection._shell.path_has_trailing_slash(dest)
        )

    def _already_right(self, source_full, dest, task_vars, follow):
        """The result ansible.builtin.copy gives for an unchanged file, or None when it must run."""
        decrypt = boolean(self._task.args.get("decrypt", True), strict=False)
        try:
            real = self._loader.get_real_file(source_full, decrypt=decrypt)
        except AnsibleFileNotFound:
            return None  # the builtin path reports it in its own words
        try:
            local_checksum = checksum(real)
        finally:
            if real != source_full:
                self._loader.cleanup_tmp_file(real)
        module_args = {k: v for k, v in self._task.args.items() if k in ATTRIBUTE_OPTIONS and v is not None}
        module_args.update(path=dest, checksum=local_checksum, follow=follow)
        state = self._execute_module(module_name=STATE_MODULE, module_args=module_args, task_vars=task_vars)
        if state.get("failed") or not state.get("matches"):
            return None
        result = {k: state[k] for k in ("path", "uid", "gid", "owner", "group", "mode", "state", "size", "secontext")
                  if k in state}
        result.update(changed=False, checksum=local_checksum, dest=state["path"],
                      diff={"before": {"path": state["path"]}, "after": {"path": state["path"]}})
        return result

    def _copy_file(self, source_full, source_rel, content, content_tempfile, dest, task_vars, follow):
        if self._fast_path_applies(dest):
            result = self._already_right(source_full, dest, task_vars, follow)
            if result is not None:
                self._remove_tempfile_if_content_defined(content, content_tempfile)
                return result
        if self._connection._shell.tmpdir is None:
            self._make_tmp_path()
        return super()._copy_file(source_full, source_rel, content, content_tempfile, dest, task_vars, follow)
