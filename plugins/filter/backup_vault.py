# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup_vault filter: the Vault jobs of the backup role, for the vault role.

The vault role owns every job's policy and JWT role (DESIGN.md) and runs in the
HashiCorp layer, before the backup role (platform layer). So the vault role
cannot read a fact the backup role publishes; instead both compute the backup
jobs from the same inventory variables (``backup_sets*``,
``backup_drill_enabled``) through this one function: the vault role passes its
answer on as ``vault_jobs`` and ``vault_job_extra_paths``, and the backup_plan
filter builds its own Vault view from it too, so the two cannot disagree.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# The backup role's set when backup_sets is empty (roles/backup/vars/main.yml).
DEFAULT_SET = "apps"


def backup_vault(sets, mount="kv", drill_enabled=True):
    """Job names and extra policy paths of the backup jobs of ``sets`` (see backup_vault.yml)."""
    if sets is None:
        sets = []
    if not isinstance(sets, (list, tuple)):
        raise AnsibleFilterError("backup_vault: the input must be the list backup_sets, got %r" % (sets,))
    if not isinstance(mount, str) or not mount.strip("/"):
        raise AnsibleFilterError("backup_vault: mount %r is not a Vault mount path" % (mount,))
    mount = mount.strip("/")
    sets = list(sets) or [{"name": DEFAULT_SET}]
    jobs, extra, drill_paths = [], {}, []
    for i, bset in enumerate(sets):
        if isinstance(bset, str):
            bset = {"name": bset}
        name = bset.get("name") if isinstance(bset, dict) else None
        if not isinstance(name, str) or not name:
            raise AnsibleFilterError("backup_vault: backup_sets[%d].name is required" % i)
        job = "backup-%s" % name
        path = "%s/data/%s" % (mount, job)
        jobs += [job, job + "-retention"]
        extra[job + "-retention"] = [path]
        if bset.get("drill", True):
            drill_paths.append(path)
    if drill_enabled and drill_paths:
        jobs.append("restore-drill")
        extra["restore-drill"] = drill_paths
    return {"jobs": jobs, "extra_paths": extra}


class FilterModule:
    """selfhost.homelab backup Vault filter."""

    def filters(self):
        return {"backup_vault": backup_vault}
