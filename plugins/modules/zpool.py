#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: zpool
short_description: Manage OpenZFS pools safely (create, import, grow, replace, scrub, export, destroy)
version_added: "0.1.0"
description:
  - Manages a ZFS storage pool on OpenZFS 2.x (Debian's C(zfsutils-linux)).
  - Devices are compared by what they are, not how they are written. C(/dev/disk/by-id/...),
    C(/dev/disk/by-path/...), C(/dev/disk/by-partuuid/...), C(/dev/sdX) and partitions resolve to the same
    kernel device, and a whole disk given to ZFS matches the partition ZFS made on it, so a second run with
    the same disks spelled differently changes nothing.
  - Safe by default. It refuses to put a pool on a disk that holds a partition table, a filesystem signature or
    a ZFS label (of another pool, exported or destroyed) unless O(force=true). O(state=absent) destroys only with
    O(confirm_destroy) naming the pool and never while its datasets are in use. When a pool of that name exists
    but is exported, O(state=present) imports it instead of creating a new one.
  - Layout changes ZFS can do in place are done. It adds vdevs, attaches disks (a single disk becomes a mirror,
    a mirror gets wider) and replaces disks (O(replace)). Anything else, such as changing a vdev's type or removing a
    device, fails with a clear message before any command runs.
  - Reads the pool with two commands when nothing changes (C(zpool status -P -p), or C(zpool status -j) on
    OpenZFS 2.3+, and C(zpool get -Hp all)), plus C(zfs get -Hp) when root dataset properties are managed.
author:
  - selfhost.homelab contributors (@selfhost-homelab)
requirements:
  - OpenZFS 2.1 or later (C(zpool), C(zfs)) and C(blkid) on the managed host.
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Runs ZFS's own dry run (C(zpool create -n), C(zpool add -n)) and returns its output in RV(dry_run);
      every other command that would run is listed in RV(commands) and not run.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Shows the pool's layout, the managed pool properties and root dataset properties before and after.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
    support: partial
    details: Idempotent except O(scrub=true), which starts a scrub on every run.
options:
  name:
    description: Name of the pool.
    type: str
    required: true
  state:
    description:
      - V(present) imports the pool when it is exported, creates it when it does not exist, then brings layout
        and properties to what is asked.
      - V(imported) imports an exported pool and never creates one.
      - V(exported) exports an imported pool (refused while its datasets are busy).
      - V(absent) destroys an imported pool; needs O(confirm_destroy). An exported pool is left alone.
    type: str
    choices: [present, absent, imported, exported]
    default: present
  vdevs:
    description:
      - The whole wanted layout. Needed to create a pool; on an existing pool, vdevs not yet in it are added
        and disks are attached where a single disk or a mirror should become a (wider) mirror.
      - Every vdev of the pool must be listed. The module never removes or detaches devices.
    type: list
    elements: dict
    suboptions:
      role:
        description: What the vdev is for.
        type: str
        choices: [data, log, cache, spare, special, dedup]
        default: data
      type:
        description:
          - V(stripe) makes each disk its own top-level vdev (no redundancy). C(cache) and C(spare) devices are
            always V(stripe).
          - V(draid), V(draid1), V(draid2), V(draid3) take O(vdevs[].draid_data), O(vdevs[].draid_children)
            and O(vdevs[].draid_spares).
        type: str
        choices: [stripe, mirror, raidz, raidz1, raidz2, raidz3, draid, draid1, draid2, draid3]
        default: stripe
      disks:
        description: Devices of the vdev, in any spelling (by-id is best).
        type: list
        elements: str
        required: true
      draid_data:
        description: dRAID data disks per redundancy group (the C(d) of C(draid2:4d:1s)).
        type: int
      draid_children:
        description: dRAID expected children count (the C(c)).
        type: int
      draid_spares:
        description: dRAID distributed spares (the C(s)).
        type: int
  replace:
    description:
      - Disks to replace, C(zpool replace POOL OLD NEW). Done only while O(replace[].old) is still in the pool, so
        it runs once. The new disk must be blank unless O(force=true).
      - List the new disk in O(vdevs) too.
    type: list
    elements: dict
    suboptions:
      old:
        description: The disk to take out (any spelling, or the GUID ZFS shows for a missing disk).
        type: str
        required: true
      new:
        description: The disk to put in.
        type: str
        required: true
  wait:
    description: Wait for the resilver after O(replace) or an attach (C(-w)).
    type: bool
    default: false
  pool_properties:
    description: Pool properties (C(zpool create -o), C(zpool set)), for example C(ashift), C(autotrim).
    type: dict
    default: {}
  filesystem_properties:
    description:
      - Properties of the pool's root dataset (C(zpool create -O), C(zfs set)), for example C(compression),
        C(atime), C(xattr).
      - C(casesensitivity), C(normalization), C(utf8only), C(encryption) can only be set at creation; a different
        value on an existing pool fails.
    type: dict
    default: {}
  mountpoint:
    description: Mountpoint of the root dataset (C(-m) at creation, C(zfs set mountpoint) later).
    type: str
  altroot:
    description: Alternate root (C(-R)) when creating or importing. Not persistent, so not compared later.
    type: str
  import_dirs:
    description: Directories searched for exported pools (C(zpool import -d)); the default is ZFS's own search.
    type: list
    elements: path
  force:
    description:
      - Use disks that hold a partition table, a filesystem or a ZFS label, and pass C(-f) to
        C(zpool create/add/attach/replace). Their data is lost.
      - Never applies to destroying or exporting a pool.
    type: bool
    default: false
  confirm_destroy:
    description: Must equal O(name) for O(state=absent) to destroy the pool.
    type: str
  scrub:
    description: Start a scrub (C(zpool scrub)). Reports changed on every run.
    type: bool
    default: false
  scrub_wait:
    description: With O(scrub=true), wait until the scrub finishes (C(zpool scrub -w)).
    type: bool
    default: false
  status_format:
    description:
      - How to read C(zpool status). V(auto) uses JSON on OpenZFS 2.3+ (from the loaded module's version) and
        text otherwise.
    type: str
    choices: [auto, json, text]
    default: auto
seealso:
  - module: community.general.zpool
  - module: community.general.zfs
  - name: zpoolconcepts(7)
    description: vdev types and classes.
    link: https://openzfs.github.io/openzfs-docs/man/master/7/zpoolconcepts.7.html
notes:
  - O(state=absent) never uses C(zpool destroy -f); a pool whose datasets are in use is refused.
"""

EXAMPLES = r"""
- name: Create the photo mirror from two disks named by id
  selfhost.homelab.zpool:
    name: tank
    vdevs:
      - type: mirror
        disks:
          - /dev/disk/by-id/ata-WDC_WD40EFRX-68N32N0_WD-WCC7K0000001
          - /dev/disk/by-id/ata-WDC_WD40EFRX-68N32N0_WD-WCC7K0000002
    pool_properties:
      ashift: 12
      autotrim: "on"
    filesystem_properties:
      compression: lz4
      atime: "off"
      xattr: sa
    mountpoint: /srv/tank

- name: Turn a single-disk pool into a mirror (zpool attach)
  selfhost.homelab.zpool:
    name: tank
    vdevs:
      - type: mirror
        disks: [/dev/disk/by-id/ata-OLD, /dev/disk/by-id/ata-NEW]

- name: Replace a failing disk and wait for the resilver
  selfhost.homelab.zpool:
    name: tank
    replace:
      - old: /dev/disk/by-id/ata-FAILING
        new: /dev/disk/by-id/ata-SHINY
    wait: true

- name: Scrub and report the result
  selfhost.homelab.zpool:
    name: tank
    scrub: true
    scrub_wait: true
  register: __scrub

- name: Destroy a pool (explicitly confirmed)
  selfhost.homelab.zpool:
    name: scratch
    state: absent
    confirm_destroy: scratch
"""

RETURN = r"""
commands:
  description: The commands that changed the pool, or that would in check mode.
  returned: always
  type: list
  elements: str
  sample: ["/usr/sbin/zpool create tank mirror /dev/disk/by-id/virtio-disk1 /dev/disk/by-id/virtio-disk2"]
dry_run:
  description: Output of ZFS's own dry runs (C(create -n), C(add -n)) in check mode.
  returned: when check mode ran a dry run
  type: list
  elements: str
pool:
  description: Facts of the pool after the task (null when it is not imported).
  returned: always
  type: dict
  contains:
    name:
      description: Pool name.
      type: str
    state:
      description: Pool state from C(zpool status) (ONLINE, DEGRADED, FAULTED, ...).
      type: str
    health:
      description: The C(health) property.
      type: str
    capacity:
      description: Percent used.
      type: str
    fragmentation:
      description: Free space fragmentation, percent.
      type: str
    errors:
      description: Known data errors (0 when none).
      type: int
    scan:
      description: The last scrub or resilver.
      type: dict
      sample: {function: scrub, state: finished, errors: 0, repaired: "0B", end: "Fri Nov 27 15:01:02 2026"}
    layout:
      description: Vdevs by role (data, log, cache, spare, special, dedup); each with type, name, state, devices.
      type: dict
    properties:
      description: Every pool property (C(zpool get -Hp all)).
      type: dict
msg:
  description: A note when nothing was done and why.
  returned: sometimes
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.homelab.plugins.module_utils._zfs_parse import ParseError
from ansible_collections.selfhost.homelab.plugins.module_utils._zfs_pool import ZpoolError, manage

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent", "imported", "exported"]),
    vdevs=dict(type="list", elements="dict", options=dict(
        role=dict(type="str", default="data", choices=["data", "log", "cache", "spare", "special", "dedup"]),
        type=dict(type="str", default="stripe", choices=[
            "stripe", "mirror", "raidz", "raidz1", "raidz2", "raidz3", "draid", "draid1", "draid2", "draid3"]),
        disks=dict(type="list", elements="str", required=True),
        draid_data=dict(type="int"),
        draid_children=dict(type="int"),
        draid_spares=dict(type="int"),
    )),
    replace=dict(type="list", elements="dict", options=dict(
        old=dict(type="str", required=True),
        new=dict(type="str", required=True),
    )),
    wait=dict(type="bool", default=False),
    pool_properties=dict(type="dict", default={}),
    filesystem_properties=dict(type="dict", default={}),
    mountpoint=dict(type="str"),
    altroot=dict(type="str"),
    import_dirs=dict(type="list", elements="path"),
    force=dict(type="bool", default=False),
    confirm_destroy=dict(type="str"),
    scrub=dict(type="bool", default=False),
    scrub_wait=dict(type="bool", default=False),
    status_format=dict(type="str", default="auto", choices=["auto", "json", "text"]),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = manage(module)
    except ZpoolError as e:
        module.fail_json(msg=e.msg, **e.result)
    except ParseError as e:
        module.fail_json(msg="could not parse ZFS output: %s" % e)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
