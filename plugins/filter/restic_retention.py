# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restic_retention filter: a retention policy dict as restic forget arguments."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.homelab.plugins.module_utils._restic_retention import (
    RetentionError,
    retention_args,
)


def restic_retention(policy):
    """Return the ``restic forget`` arguments for ``policy`` as a list of strings."""
    try:
        return retention_args(policy)
    except RetentionError as exc:
        raise AnsibleFilterError("restic_retention: %s" % exc)


class FilterModule:
    """selfhost.homelab restic filters."""

    def filters(self):
        return {"restic_retention": restic_retention}
