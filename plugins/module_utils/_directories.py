# -*- coding: utf-8 -*-
# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many directories in one module run, for selfhost.homelab.directories (private to the collection).

Inspect every item first (path absolute, nothing in the way, parents passable,
owner/group known, mode well-formed) -> only then create or fix them in order,
each as ansible.builtin.file state=directory does (its ensure_directory in
ansible-core 2.19): missing parents are created with the item's attributes,
and attributes are compared and set with AnsibleModule's own helpers
(load_file_common_arguments + set_fs_attributes_if_different), so a mode,
owner or group compares exactly as it does for the file module. Nothing is
ever removed or replaced, and there is no recursion into existing trees.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import grp
import os
import pwd
import stat

ITEM_OPTIONS = ("owner", "group", "mode", "seuser", "serole", "setype", "selevel", "attributes")
_STAT_OF_A_DIRECTORY = os.stat_result((stat.S_IFDIR | 0o755, 0, 0, 0, 0, 0, 0, 0, 0, 0))


class DirectoriesError(Exception):
    """Bad input or a path in the way, found before anything changed."""


def path_state(b_path):
    """What is at b_path, named as the file module names it (link is not followed)."""
    try:
        if os.path.lexists(b_path):
            if os.path.islink(b_path):
                return "link"
            if os.path.isdir(b_path):
                return "directory"
            if os.stat(b_path).st_nlink > 1:
                return "hard"
            return "file"
    except FileNotFoundError:
        pass
    return "absent"


def check_mode_value(mode_class, mode, field):
    """Refuse a mode the file module would refuse (it does so only once it reaches the path)."""
    if mode is None:
        return
    if isinstance(mode, bool) or not isinstance(mode, (int, str)):
        raise DirectoriesError("%s: mode must be in octal or symbolic form, got %r" % (field, mode))
    if isinstance(mode, int):
        value = mode
    else:
        try:
            value = int(mode, 8)
        except ValueError:
            try:
                value = mode_class._symbolic_mode_to_octal(_STAT_OF_A_DIRECTORY, mode)
            except Exception as exc:
                raise DirectoriesError("%s: mode %r must be in octal or symbolic form (%s)" % (field, mode, exc))
    if value < 0 or value != stat.S_IMODE(value):
        raise DirectoriesError("%s: mode %r is not a permission mode (0 to 07777)" % (field, mode))


# How each account option is looked up by name (a number is taken as an id, as the file module does).
ACCOUNTS = {"owner": (pwd.getpwnam, "user"), "group": (grp.getgrnam, "group")}


def check_account(key, name, field):
    """An owner (key "owner") or group ("group") must be an id or a name the host knows."""
    if name is None:
        return
    lookup, kind = ACCOUNTS[key]
    try:
        int(name)
    except ValueError:
        try:
            lookup(name)
        except KeyError:
            raise DirectoriesError("%s: no such %s %r on the host" % (field, kind, name))


def _check_parents(path, field):
    """Every existing ancestor must be (or lead through a link to) a directory, or mkdir fails half-way."""
    current = "/"
    for part in path.strip("/").split("/")[:-1]:
        current = os.path.join(current, part)
        if not os.path.lexists(current):
            return
        if not os.path.isdir(current):
            what = path_state(current)
            if what == "link":
                what = "link to something that is not a directory"
            raise DirectoriesError("%s: cannot create %s: its parent %s exists as a %s" % (field, path, current, what))


class Plan(object):
    """One item, inspected: where it acts (a followed link's target) and what is there now."""

    def __init__(self, index, path, target, prev_state, params):
        self.index = index
        self.path = path
        self.target = target
        self.prev_state = prev_state
        self.params = params
        self.unknown = []  # check mode: owner/group not on the host yet


def inspect(mode_class, items, check_mode=False):
    """Validate and look at every item; raise DirectoriesError naming directories[i].<field> on the first problem.

    In check mode an owner or group that does not exist yet is not a problem: an earlier task that check
    mode did not run (the role's user or group task) would have made it; the item is reported as changing.
    """
    plans = []
    for index, item in enumerate(items):
        field = "directories[%d]" % index
        path = item.get("path")
        if not path:
            raise DirectoriesError("%s.path: required" % field)
        path = os.path.expanduser(os.path.expandvars(path))
        if not os.path.isabs(path):
            raise DirectoriesError("%s.path: %r is not an absolute path" % (field, path))
        path = os.path.normpath(path)
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
        check_mode_value(mode_class, item.get("mode"), field + ".mode")
        unknown = []
        for key in ("owner", "group"):
            try:
                check_account(key, item.get(key), "%s.%s" % (field, key))
            except DirectoriesError:
                if not check_mode:
                    raise
                unknown.append(key)

        b_path = path.encode("utf-8", "surrogateescape")
        state = path_state(b_path)
        target = path
        if state == "link":
            # As the file module (follow=yes, its default): act on what the link points to.
            target = os.path.realpath(path)
            state = path_state(target.encode("utf-8", "surrogateescape"))
        if state not in ("absent", "directory"):
            raise DirectoriesError("%s.path: %s already exists as a %s; this module never replaces anything"
                                   % (field, path if target == path else "%s (link target of %s)" % (target, path),
                                      state))
        if state == "absent":
            _check_parents(target, field + ".path")
        params = dict((key, item.get(key)) for key in ITEM_OPTIONS)
        params["path"] = target
        plan = Plan(index, path, target, state, params)
        plan.unknown = unknown
        plans.append(plan)
    return plans


def describe(path):
    """State, mode, owner and group of path now (followed), as returned per item."""
    try:
        st = os.stat(path)
    except OSError:
        return {"state": "absent", "mode": None, "owner": None, "group": None, "uid": None, "gid": None}
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return {"state": "directory" if stat.S_ISDIR(st.st_mode) else "file", "mode": "0%03o" % stat.S_IMODE(st.st_mode),
            "owner": owner, "group": group, "uid": st.st_uid, "gid": st.st_gid}


def _planned(plan, module):
    """Check mode, a directory yet to be made: what the run would set (None where the host decides)."""
    mode = plan.params.get("mode")
    if mode is not None:
        if isinstance(mode, str):
            try:
                mode = int(mode, 8)
            except ValueError:
                umask = os.umask(0)
                os.umask(umask)
                base = os.stat_result((stat.S_IFDIR | (0o777 & ~umask), 0, 0, 0, 0, 0, 0, 0, 0, 0))
                mode = module._symbolic_mode_to_octal(base, mode)
        mode = "0%03o" % mode
    return {"state": "directory", "mode": mode, "owner": plan.params.get("owner"),
            "group": plan.params.get("group"), "uid": None, "gid": None}


def _overlay(now, wanted):
    """Check mode, an existing directory: its attributes as the run would leave them."""
    after = dict(now)
    if "mode" in wanted:
        after["mode"] = wanted["mode"]
    if "owner" in wanted:
        after["uid"] = wanted["owner"] if isinstance(wanted["owner"], int) else None
        try:
            after["owner"] = pwd.getpwuid(wanted["owner"]).pw_name
        except (KeyError, TypeError):
            after["owner"] = str(wanted["owner"])
    if "group" in wanted:
        after["gid"] = wanted["group"] if isinstance(wanted["group"], int) else None
        try:
            after["group"] = grp.getgrgid(wanted["group"]).gr_name
        except (KeyError, TypeError):
            after["group"] = str(wanted["group"])
    return after


def ensure_one(module, plan, pending):
    """Make or fix one planned directory; returns (changed, diff, created paths).

    pending: in check mode, the directories earlier items would have created (so a later item inside or
    equal to one of them is not reported as creating it again).
    """
    file_args = module.load_file_common_arguments(plan.params)
    path = plan.target
    diff = {"before": {"path": path}, "after": {"path": path}}
    changed = False
    created = []
    if module.check_mode:
        absent = plan.prev_state == "absent" and path not in pending
        if plan.prev_state == "absent" and not absent:
            # An earlier item would create it with its own attributes; say this one may set its own.
            for key in ("mode", "owner", "group"):
                if plan.params.get(key) is not None:
                    diff["after"][key] = _planned(plan, module)[key]
                    changed = True
            return changed, diff, created
    else:
        # Looked at again: an earlier item may have created it since inspect().
        absent = path_state(path.encode("utf-8", "surrogateescape")) == "absent"
    if absent:
        diff["before"]["state"] = "absent"
        diff["after"]["state"] = "directory"
        current = "/"
        for part in path.strip("/").split("/"):
            current = os.path.join(current, part)
            if os.path.exists(current) or current in pending:
                continue
            created.append(current)
            if module.check_mode:
                pending.add(current)
                changed = True
                continue
            try:
                os.mkdir(current)
                changed = True
            except OSError as exc:
                # Something else may have made it since we looked; a directory is all we want.
                if not (exc.errno == errno.EEXIST and os.path.isdir(current)):
                    module.fail_json(msg="directories[%d]: creating %s failed: %s" % (plan.index, current, exc),
                                     path=plan.path)
            parent_args = dict(file_args, path=current)
            changed = module.set_fs_attributes_if_different(parent_args, changed, diff, expand=False)
        if module.check_mode:
            for key in ("mode", "owner", "group"):
                if plan.params.get(key) is not None:
                    diff["after"][key] = _planned(plan, module)[key]
        return changed, diff, created
    # An existing directory: compare and set its attributes only.
    if plan.unknown:
        # Check mode, an account not made yet: it would be set once it exists.
        file_args = dict(file_args)
        for key in plan.unknown:
            file_args[key] = None
            diff["after"][key] = plan.params[key]
            changed = True
    changed = module.set_fs_attributes_if_different(file_args, changed, diff, expand=False)
    return changed, diff, created


def ensure_all(module, plans):
    """Act on every plan in order; returns (changed, per-item results, diffs of the items that changed)."""
    results = []
    diffs = []
    any_changed = False
    pending = set()
    for plan in plans:
        changed, diff, created = ensure_one(module, plan, pending)
        if module.check_mode and plan.prev_state == "absent":
            after = _planned(plan, module)
        else:
            after = describe(plan.target)
            if module.check_mode:
                after = _overlay(after, diff["after"])
        result = {"path": plan.path, "changed": changed, "created": created}
        if plan.target != plan.path:
            result["dest"] = plan.target
        result.update(after)
        results.append(result)
        if changed:
            any_changed = True
            diff["before_header"] = diff["after_header"] = plan.path
            diffs.append(diff)
    return any_changed, results, diffs
