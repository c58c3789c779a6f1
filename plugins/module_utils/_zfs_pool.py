# -*- coding: utf-8 -*-
# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pool management for selfhost.homelab.zpool (private to the collection).

Read the pool (`zpool status` + `zpool get`: two commands for an unchanged
pool) -> compare with the wanted layout and properties, matching devices by
what they ARE (symlinks resolved, whole disk vs the partition ZFS made on it)
-> plan the commands -> run them, or in check mode run ZFS's own dry run
where it has one (`create -n`, `add -n`) and report the rest.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.selfhost.homelab.plugins.module_utils._zfs_parse import (
    ParseError,
    normalize_value,
    parse_blkid,
    parse_import_list,
    parse_properties,
    parse_status,
    parse_status_json,
)

VDEV_TYPES = ("stripe", "mirror", "raidz", "raidz1", "raidz2", "raidz3", "draid", "draid1", "draid2", "draid3")
VDEV_ROLES = ("data", "log", "cache", "spare", "special", "dedup")
_MIN_DISKS = {"mirror": 2, "raidz1": 2, "raidz2": 3, "raidz3": 4}
# Root dataset properties that ZFS only accepts when the dataset is created.
CREATE_ONLY_FS = ("casesensitivity", "normalization", "utf8only", "encryption", "volblocksize")
_RESERVED = ("mirror", "raidz", "draid", "spare", "log", "cache", "special", "dedup")


def pool_facts(status, props):
    """The pool's facts: its parsed status plus the properties that describe it."""
    facts = dict(status)
    facts["properties"] = {k: v["value"] for k, v in props.items()}
    # Text status has no guid, JSON status has one: the property is the same either way.
    if "guid" in props:
        facts["guid"] = props["guid"]["value"]
    for key in ("health", "size", "allocated", "free", "capacity", "fragmentation"):
        if key in props:
            facts[key] = props[key]["value"]
    return facts


class ZpoolError(Exception):
    def __init__(self, msg, **result):
        super(ZpoolError, self).__init__(msg)
        self.msg = msg
        self.result = result


def canonical_type(kind):
    return {"raidz": "raidz1", "draid": "draid1"}.get(kind, kind)


# --------------------------------------------------------------------------
# Devices: every spelling of a disk resolves to one kernel name.
class Devices:
    """Resolve device names on the managed host (the module runs there)."""

    def __init__(self, sys_block="/sys/class/block", realpath=os.path.realpath, exists=os.path.exists):
        self.sys_block = sys_block
        self.realpath = realpath
        self.exists = exists

    def full(self, name):
        return name if name.startswith("/") else "/dev/" + name

    def kernel_name(self, name):
        """/dev/disk/by-id/virtio-disk1-part1 -> vdb1; sdb -> sdb."""
        return os.path.basename(self.realpath(self.full(name)))

    def parent(self, kname):
        """The whole disk a partition lives on (vdb1 -> vdb); a disk is its own parent."""
        node = os.path.join(self.sys_block, kname)
        if self.exists(os.path.join(node, "partition")):
            return os.path.basename(os.path.dirname(self.realpath(node)))
        return kname

    def partitions(self, kname):
        node = self.realpath(os.path.join(self.sys_block, kname))
        try:
            entries = os.listdir(node)
        except OSError:
            return []
        return sorted(e for e in entries if e.startswith(kname) and self.exists(os.path.join(node, e, "partition")))

    def same(self, wanted, actual):
        """Is the pool member ACTUAL the device the user wrote as WANTED?
        A whole disk given to ZFS shows up as its first partition."""
        if wanted == actual:
            return True
        w, a = self.kernel_name(wanted), self.kernel_name(actual)
        if w == a:
            return True
        return self.parent(w) == w and self.parent(a) == w and a != w


# --------------------------------------------------------------------------
# The wanted layout, validated before anything runs.
def validate_vdevs(vdevs, devices):
    """Check the `vdevs` option; return it normalised. Raises ZpoolError naming the field."""
    out = []
    seen = {}
    for i, v in enumerate(vdevs or []):
        field = "vdevs[%d]" % i
        role = v.get("role") or "data"
        kind = canonical_type(v.get("type") or "stripe")
        disks = list(v.get("disks") or [])
        if not disks:
            raise ZpoolError("%s.disks: at least one disk is required" % field)
        if role in ("cache", "spare") and kind != "stripe":
            raise ZpoolError("%s.type: %s devices are single disks; use type stripe, not %s" % (field, role, kind))
        if kind.startswith("draid") and role not in ("data", "special"):
            raise ZpoolError("%s.type: dRAID is for data vdevs, not %s" % (field, role))
        need = _MIN_DISKS.get(kind, 1)
        if len(disks) < need:
            raise ZpoolError("%s.disks: a %s vdev needs at least %d disks, got %d" % (field, kind, need, len(disks)))
        for j, disk in enumerate(disks):
            path = devices.full(disk)
            if not devices.exists(path):
                raise ZpoolError("%s.disks[%d]: device %s does not exist on this host" % (field, j, disk))
            key = devices.kernel_name(disk)
            if key in seen:
                raise ZpoolError("%s.disks[%d]: %s is the same device as %s" % (field, j, disk, seen[key]))
            seen[key] = disk
        spec = kind
        if kind.startswith("draid"):
            parts = [kind]
            for opt, suffix in (("draid_data", "d"), ("draid_children", "c"), ("draid_spares", "s")):
                if v.get(opt) is not None:
                    parts.append("%d%s" % (v[opt], suffix))
            spec = ":".join(parts)
        out.append({"role": role, "type": kind, "disks": disks, "spec": spec})
    return out


def expand(vdevs):
    """A stripe of N disks is N single-disk top-level vdevs."""
    out = []
    for v in vdevs:
        if v["type"] == "stripe":
            out.extend({"role": v["role"], "type": "disk", "disks": [d], "spec": None} for d in v["disks"])
        else:
            out.append(v)
    return out


def vdev_args(vdevs):
    """Command-line vdev specification, grouped by role (zpool accepts each
    class keyword once: `mirror a b log mirror c d cache e spare f`)."""
    args = []
    for role in VDEV_ROLES:
        group = [v for v in vdevs if v["role"] == role]
        if not group:
            continue
        if role != "data":
            args.append(role)
        for v in group:
            if v["type"] not in ("stripe", "disk"):
                args.append(v["spec"])
            args.extend(v["disks"])
    return args


def actual_vdevs(facts):
    out = []
    for role, vdevs in facts["layout"].items():
        for v in vdevs:
            if role == "spare" and re.match(r"^draid\d-\d+-\d+$", v["name"]):
                continue  # a dRAID's distributed spare comes with its vdev
            out.append({"role": role, "type": v["type"], "name": v["name"],
                        "disks": [d["path"] for d in v["devices"]]})
    return out


def plan_layout(wanted, actual, devices):
    """Compare the wanted (expanded) vdevs with the pool's.

    Returns (attach, add): attach = [(existing_disk, new_disk)], add = [vdev].
    Raises ZpoolError for anything ZFS cannot do in place."""
    attach, add = [], []
    unmatched = list(actual)

    def owned(disk):
        return [a for a in actual if any(devices.same(disk, d) for d in a["disks"])]

    for w in wanted:
        same = [a for a in unmatched if a["role"] == w["role"] and _same_set(w["disks"], a["disks"], devices)]
        if same and _type_matches(w, same[0]):
            unmatched.remove(same[0])
            continue
        if same:
            raise ZpoolError(
                "vdev %s (%s) of pool is a %s; ZFS cannot change a vdev's type from %s to %s in place"
                % (same[0]["name"], ", ".join(w["disks"]), same[0]["type"], same[0]["type"], w["type"]))
        holders = []
        for d in w["disks"]:
            for a in owned(d):
                if a not in holders:
                    holders.append(a)
        if not holders:
            add.append(w)
            continue
        a = holders[0]
        if (len(holders) == 1 and w["type"] == "mirror" and a["type"] in ("disk", "mirror")
                and a["role"] == w["role"] and a in unmatched):
            present = [d for d in w["disks"] if any(devices.same(d, x) for x in a["disks"])]
            extra = [x for x in a["disks"] if not any(devices.same(d, x) for d in w["disks"])]
            if not extra:
                unmatched.remove(a)
                member = [x for x in a["disks"] if devices.same(present[0], x)][0]
                attach.extend((member, d) for d in w["disks"] if d not in present)
                continue
        raise ZpoolError(
            "vdevs: wanted %s %s (%s) does not match the pool's %s %s (%s); ZFS cannot change that in place "
            "(only adding a vdev or attaching disks to a single disk or mirror is done)"
            % (w["role"], w["type"], ", ".join(w["disks"]), a["role"], a["type"], ", ".join(a["disks"])))
    if unmatched:
        a = unmatched[0]
        raise ZpoolError(
            "vdevs: the pool has %s vdev %s (%s) that is not in vdevs; list the whole layout "
            "(this module never removes or detaches devices)" % (a["role"], a["name"], ", ".join(a["disks"])))
    return attach, add


def _same_set(wanted, actual, devices):
    if len(wanted) != len(actual):
        return False
    return all(any(devices.same(w, a) for a in actual) for w in wanted)


def _type_matches(w, a):
    if w["type"] == "disk":
        return a["type"] == "disk"
    return w["type"] == a["type"]


def simulate_replace(actual, old, new, devices):
    out = []
    for a in actual:
        disks = [new if devices.same(old, d) or d == old else d for d in a["disks"]]
        out.append(dict(a, disks=disks))
    return out


def layout_view(vdevs):
    """A compact layout for diff output: ['data mirror: a, b', ...]."""
    return ["%s %s: %s" % (v["role"], v["type"], ", ".join(v["disks"])) for v in vdevs]


# --------------------------------------------------------------------------
# The busy check before export/destroy (no extra command: /proc is enough).
def busy_paths(pool, mountinfo="/proc/self/mountinfo", proc="/proc"):
    """Mountpoints of POOL's datasets that a process uses (cwd, root, open file)."""
    mounts = []
    try:
        with open(mountinfo) as f:
            for line in f:
                pre, _sep, post = line.partition(" - ")
                fields, tail = pre.split(), post.split()
                if len(tail) >= 2 and tail[0] == "zfs" and (tail[1] == pool or tail[1].startswith(pool + "/")):
                    mounts.append(fields[4].replace("\\040", " "))
    except OSError:
        return []
    if not mounts:
        return []
    busy = set()
    me = str(os.getpid())
    for pid in os.listdir(proc):
        if not pid.isdigit() or pid == me:
            continue
        links = [os.path.join(proc, pid, "cwd"), os.path.join(proc, pid, "root")]
        try:
            links += [os.path.join(proc, pid, "fd", fd) for fd in os.listdir(os.path.join(proc, pid, "fd"))]
        except OSError:
            pass
        for link in links:
            try:
                target = os.readlink(link)
            except OSError:
                continue
            for m in mounts:
                if m not in ("/", "none", "legacy") and (target == m or target.startswith(m.rstrip("/") + "/")):
                    busy.add("%s (pid %s)" % (m, pid))
    return sorted(busy)


# --------------------------------------------------------------------------
class Zpool:
    """One pool on the managed host. All commands go through run(), which
    records them: `commands` (what changed or would change) and `ran`."""

    def __init__(self, module, devices=None):
        self.module = module
        self.p = module.params
        self.name = self.p["name"]
        self.check = module.check_mode
        self.devices = devices or Devices()
        self.zpool = module.get_bin_path("zpool", required=True)
        self.zfs = module.get_bin_path("zfs", required=True)
        self.commands = []
        self.ran = []
        self.dry_run = []
        self.json = None  # whether `zpool status -j` works here (OpenZFS 2.3+)

    # -- running commands
    def run(self, argv, change=False, dry_run_flag=None, ok_rcs=(0,)):
        if change:
            self.commands.append(" ".join(argv))
            if self.check:
                if not dry_run_flag:
                    return 0, "", ""
                argv = argv[:2] + [dry_run_flag] + argv[2:]
        self.ran.append(" ".join(argv))
        rc, out, err = self.module.run_command(argv)
        if rc not in ok_rcs:
            raise ZpoolError("%s failed: %s" % (" ".join(argv[:2]), (err or out).strip()),
                             cmd=" ".join(argv), rc=rc, stdout=out, stderr=err)
        if change and self.check:
            self.dry_run.append(out.strip())
        return rc, out, err

    # -- reading
    def zfs_version(self, path="/sys/module/zfs/version"):
        try:
            with open(path) as f:
                m = re.match(r"^(\d+)\.(\d+)", f.read().strip())
            return (int(m.group(1)), int(m.group(2))) if m else None
        except OSError:
            return None

    def status(self):
        """Pool facts, or None when no pool of that name is imported."""
        fmt = self.p.get("status_format") or "auto"
        if fmt == "auto" and self.json is None:
            # JSON status arrived in OpenZFS 2.3; the loaded module says which
            # we have without running a command.
            version = self.zfs_version()
            self.json = bool(version and version >= (2, 3))
        if fmt == "json" or (fmt == "auto" and self.json):
            argv = [self.zpool, "status", "-j", "--json-int", "-P", self.name]
            self.ran.append(" ".join(argv))
            rc, out, err = self.module.run_command(argv)
            if rc == 0 and out.lstrip().startswith("{"):
                self.json = True
                return parse_status_json(out, self.name)
            if _no_such_pool(err):
                self.json = True
                return None
            if fmt == "json":
                raise ZpoolError("zpool status -j is not supported here (OpenZFS 2.3+): %s" % err.strip())
            self.json = False
        argv = [self.zpool, "status", "-P", "-p", self.name]
        self.ran.append(" ".join(argv))
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            if _no_such_pool(err):
                return None
            raise ZpoolError("zpool status failed: %s" % err.strip(), rc=rc, stderr=err)
        return parse_status(out)

    def pool_properties(self):
        _rc, out, _err = self.run([self.zpool, "get", "-Hp", "all", self.name])
        return parse_properties(out)

    def fs_properties(self, names):
        _rc, out, _err = self.run([self.zfs, "get", "-Hp", "-o", "property,value,source",
                                   ",".join(sorted(names)), self.name])
        return parse_properties(out, columns=("property", "value", "source"))

    def importable(self):
        argv = [self.zpool, "import"]
        for d in self.p.get("import_dirs") or []:
            argv += ["-d", d]
        self.ran.append(" ".join(argv))
        rc, out, err = self.module.run_command(argv)
        if rc != 0 and "no pools available" not in (out + err):
            raise ZpoolError("zpool import (list) failed: %s" % err.strip(), rc=rc, stderr=err)
        return [p for p in parse_import_list(out) if p["name"] == self.name]

    def facts(self, status=None):
        status = status or self.status()
        if status is None:
            return None
        return pool_facts(status, self.pool_properties())

    # -- safety: never put a pool on a disk that holds something
    def check_new_disks(self, disks):
        """Refuse disks with a partition table, a filesystem signature or a
        ZFS label (of another pool, or of a destroyed one) unless force."""
        if self.p.get("force") or not disks:
            return
        probe = []
        for d in disks:
            k = self.devices.kernel_name(d)
            probe.append("/dev/" + k)
            probe.extend("/dev/" + part for part in self.devices.partitions(k))
        blkid = self.module.get_bin_path("blkid", required=True)
        argv = [blkid, "-p", "-o", "export"] + probe
        self.ran.append(" ".join(argv))
        # rc 2: nothing found on any device; 8: ambivalent (several signatures)
        rc, out, err = self.module.run_command(argv)
        if rc not in (0, 2, 8):
            raise ZpoolError("blkid failed on %s: %s" % (" ".join(probe), err.strip()), rc=rc)
        found = parse_blkid(out)
        problems = []
        for d in disks:
            k = self.devices.kernel_name(d)
            for dev in ["/dev/" + k] + ["/dev/" + p for p in self.devices.partitions(k)]:
                sig = found.get(dev) or {}
                if sig.get("TYPE") == "zfs_member":
                    problems.append("%s (%s) carries a ZFS label of pool '%s'" % (d, dev, sig.get("LABEL", "?")))
                elif sig.get("PTTYPE"):
                    problems.append("%s (%s) has a %s partition table" % (d, dev, sig["PTTYPE"]))
                elif sig.get("TYPE"):
                    problems.append("%s (%s) holds a %s signature" % (d, dev, sig["TYPE"]))
            if rc == 8 and not any(d in p for p in problems):
                problems.append("%s holds several ambivalent signatures" % d)
        if problems:
            raise ZpoolError(
                "refusing to use disks that are not blank: %s. Nothing was changed; wipe them yourself or set "
                "force: true if their data may be destroyed" % "; ".join(problems))


def _no_such_pool(err):
    return "no such pool" in (err or "")


def fmt_props(flag, props):
    args = []
    for k in sorted(props or {}):
        v = props[k]
        if isinstance(v, bool):
            v = "on" if v else "off"
        args += [flag, "%s=%s" % (k, v)]
    return args


def prop_changes(wanted, actual):
    """{name: (wanted, actual)} for properties whose value differs."""
    out = {}
    for k, v in (wanted or {}).items():
        have = (actual.get(k) or {}).get("value")
        w, a = normalize_value(v, have)
        if w != a:
            out[k] = (w, have)
    return out


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*$")


def _view(state, vdevs=None, pool_props=None, fs_props=None):
    out = {"state": state}
    if vdevs is not None:
        out["layout"] = layout_view(vdevs)
    if pool_props:
        out["pool_properties"] = pool_props
    if fs_props:
        out["filesystem_properties"] = fs_props
    return out


def manage(module):
    """The whole of selfhost.homelab.zpool: returns the result dict, raises ZpoolError."""
    p = module.params
    name = p["name"]
    if not _NAME.match(name) or name in _RESERVED or re.match(r"^c[0-9]", name):
        raise ZpoolError("name: %r is not a valid pool name" % name)
    z = Zpool(module)
    wanted = validate_vdevs(p.get("vdevs"), z.devices) if p.get("vdevs") else None
    for i, r in enumerate(p.get("replace") or []):
        if not z.devices.exists(z.devices.full(r["new"])):
            raise ZpoolError("replace[%d].new: device %s does not exist on this host" % (i, r["new"]))
    state = p["state"]
    result = {"changed": False, "name": name, "commands": [], "state": state}
    status = z.status()

    if state == "absent":
        if status is None:
            result["msg"] = "no imported pool named %s (an exported pool of that name is left alone)" % name
            return _finish(z, result, None, None, None)
        if p.get("confirm_destroy") != name:
            raise ZpoolError(
                "confirm_destroy: state=absent destroys pool '%s' and every dataset on it; set "
                "confirm_destroy: %s to confirm. Nothing was changed" % (name, name))
        _refuse_busy(name, "destroy")
        before = _view("present", actual_vdevs(status))
        z.run([z.zpool, "destroy", name], change=True)
        return _finish(z, result, None, before, _view("absent"))

    if state == "exported":
        if status is None:
            if z.importable():
                return _finish(z, result, None, None, None)
            raise ZpoolError("name: no pool named %s is imported or importable" % name)
        _refuse_busy(name, "export")
        z.run([z.zpool, "export", name], change=True)
        return _finish(z, result, None, _view("imported"), _view("exported"))

    before = after = None
    if status is None:
        found = z.importable()
        if len(found) > 1:
            raise ZpoolError("name: %d exported pools are named %s (ids %s); import the right one by id yourself"
                             % (len(found), name, ", ".join(str(f["id"]) for f in found)))
        if found:
            argv = [z.zpool, "import"]
            for d in p.get("import_dirs") or []:
                argv += ["-d", d]
            if p.get("altroot"):
                argv += ["-R", p["altroot"]]
            z.run(argv + [name], change=True)
            before, after = _view("exported"), _view("imported")
            if z.check:
                result["msg"] = "pool %s is exported and would be imported (not created)" % name
                return _finish(z, result, None, before, after)
            status = z.status()
        elif state == "imported":
            raise ZpoolError("name: no exported pool named %s was found to import" % name)
        else:
            return _create(z, result, wanted)
    if state == "imported":
        return _finish(z, result, status, before, after)
    return _update(z, result, status, wanted, before)


def _refuse_busy(name, what):
    busy = busy_paths(name)
    if busy:
        raise ZpoolError("refusing to %s pool %s: its datasets are busy: %s. Nothing was changed"
                         % (what, name, ", ".join(busy)))


def _create(z, result, wanted):
    p = z.p
    if not wanted:
        raise ZpoolError("vdevs: required to create pool %s (it does not exist and is not exported)" % z.name)
    if not any(v["role"] == "data" for v in wanted):
        raise ZpoolError("vdevs: a new pool needs at least one data vdev")
    z.check_new_disks([d for v in wanted for d in v["disks"]])
    fs = dict(p.get("filesystem_properties") or {})
    argv = [z.zpool, "create"] + (["-f"] if p.get("force") else [])
    argv += fmt_props("-o", p.get("pool_properties")) + fmt_props("-O", fs)
    if p.get("mountpoint"):
        argv += ["-m", p["mountpoint"]]
    if p.get("altroot"):
        argv += ["-R", p["altroot"]]
    argv += [z.name] + vdev_args(wanted)
    z.run(argv, change=True, dry_run_flag="-n")
    after = _view("present", wanted, _strs(p.get("pool_properties")), _strs(fs))
    status = None if z.check else z.status()
    return _finish(z, result, status, _view("absent"), after)


def _strs(props):
    out = {}
    for k, v in (props or {}).items():
        out[k] = ("on" if v else "off") if isinstance(v, bool) else str(v)
    return out


def _update(z, result, status, wanted, before_import):
    p = z.p
    steps = []  # (argv, dry-run flag)
    actual = actual_vdevs(status)
    new_disks = []
    for i, r in enumerate(p.get("replace") or []):
        member = [d for a in actual for d in a["disks"] if z.devices.same(r["old"], d) or d == r["old"]]
        if member:
            new_disks.append(r["new"])
            flags = (["-f"] if p.get("force") else []) + (["-w"] if p.get("wait") else [])
            steps.append(([z.zpool, "replace"] + flags + [z.name, member[0], r["new"]], None))
            actual = simulate_replace(actual, member[0], r["new"], z.devices)
        elif not any(z.devices.same(r["new"], d) for a in actual for d in a["disks"]):
            raise ZpoolError("replace[%d]: neither %s nor %s is in pool %s" % (i, r["old"], r["new"], z.name))
    after_layout = actual
    if wanted:
        attach, add = plan_layout(expand(wanted), actual, z.devices)
        for existing, new in attach:
            new_disks.append(new)
            flags = (["-f"] if p.get("force") else []) + (["-w"] if p.get("wait") else [])
            steps.append(([z.zpool, "attach"] + flags + [z.name, existing, new], None))
        for v in add:
            new_disks.extend(v["disks"])
            steps.append(([z.zpool, "add"] + (["-f"] if p.get("force") else []) + [z.name] + vdev_args([v]), "-n"))
        if attach or add:
            after_layout = expand(wanted)
    props = z.pool_properties()
    pool_changes = prop_changes(p.get("pool_properties"), props)
    for k in sorted(pool_changes):
        steps.append(([z.zpool, "set", "%s=%s" % (k, pool_changes[k][0]), z.name], None))
    wanted_fs = dict(p.get("filesystem_properties") or {})
    if p.get("mountpoint"):
        wanted_fs["mountpoint"] = p["mountpoint"]
    fs_before = fs_after = {}
    if wanted_fs:
        fs = z.fs_properties(wanted_fs.keys())
        fs_changes = prop_changes(wanted_fs, fs)
        fixed = sorted(k for k in fs_changes if k in CREATE_ONLY_FS)
        if fixed:
            raise ZpoolError("filesystem_properties: %s can only be set when the pool is created (have %s). "
                             "Nothing was changed" % (", ".join(fixed), ", ".join(
                                 "%s=%s" % (k, fs_changes[k][1]) for k in fixed)))
        for k in sorted(fs_changes):
            steps.append(([z.zfs, "set", "%s=%s" % (k, fs_changes[k][0]), z.name], None))
        fs_before = {k: (fs.get(k) or {}).get("value") for k in wanted_fs}
        fs_after = dict(fs_before, **{k: v[0] for k, v in fs_changes.items()})
    if p.get("scrub"):
        steps.append(([z.zpool, "scrub"] + (["-w"] if p.get("scrub_wait") else []) + [z.name], None))
    # Every check is done: only now does anything change.
    z.check_new_disks(new_disks)
    for argv, flag in steps:
        z.run(argv, change=True, dry_run_flag=flag)
    pool_before = {k: (props.get(k) or {}).get("value") for k in (p.get("pool_properties") or {})}
    pool_after = dict(pool_before, **{k: v[0] for k, v in pool_changes.items()})
    before = _view("present", actual_vdevs(status), pool_before, fs_before)
    after = _view("present", after_layout, pool_after, fs_after)
    if before_import:
        before = dict(before, state="exported")
    if z.commands and not z.check:
        return _finish(z, result, z.status(), before, after)
    return _finish(z, result, dict(status), before, after, props)


def _finish(z, result, status, before, after, props=None):
    result["commands"] = z.commands
    result["changed"] = bool(z.commands)
    if z.dry_run:
        result["dry_run"] = z.dry_run
    if status is not None:
        if props is None:
            props = z.pool_properties()
        result["pool"] = pool_facts(status, props)
    else:
        result["pool"] = None
    if z.module._diff and before is not None:
        result["diff"] = {"before": before, "after": after}
    return result


__all__ = ["manage", "Zpool", "ZpoolError", "Devices", "ParseError", "validate_vdevs", "expand", "vdev_args",
           "actual_vdevs", "plan_layout", "simulate_replace", "layout_view", "busy_paths", "fmt_props",
           "prop_changes", "CREATE_ONLY_FS"]
