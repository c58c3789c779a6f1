# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restic retention policy (a dict) as ``restic forget`` arguments.

Shared by the ``restic_repo`` module and the ``restic_retention`` filter, so a
policy means the same thing in a task and in a rendered backup job.
"""

from __future__ import annotations

import re

# restic forget's --keep-* flags that take a count of snapshots.
COUNT_KEYS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
# --keep-within takes a duration such as 1y2m3d4h (restic's own syntax).
DURATION_KEYS = ("keep_within",)
# --keep-tag may be given several times.
LIST_KEYS = ("keep_tags",)
ALL_KEYS = COUNT_KEYS + DURATION_KEYS + LIST_KEYS

_DURATION = re.compile(r"^(\d+[ymdh])+$")


class RetentionError(ValueError):
    """A retention policy restic would misread; the message names the field."""


def retention_args(policy):
    """Return ``restic forget`` arguments for ``policy``, in a stable order.

    Raises RetentionError naming the field for unknown keys, non-positive
    counts, bad durations, or a policy that keeps nothing explicitly (restic
    would then refuse, or on old versions remove nothing; either way the
    caller asked for something that does not mean what it says).
    """
    if not isinstance(policy, dict):
        raise RetentionError("retention must be a dict, got %s" % type(policy).__name__)
    unknown = sorted(set(policy) - set(ALL_KEYS))
    if unknown:
        raise RetentionError(
            "retention: unknown key(s) %s; known: %s" % (", ".join(map(str, unknown)), ", ".join(ALL_KEYS))
        )
    args = []
    for key in COUNT_KEYS:
        value = policy.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                value = int(str(value), 10)
            except ValueError:
                raise RetentionError("retention.%s must be a whole number, got %r" % (key, value))
        if value < 1:
            raise RetentionError(
                "retention.%s must be at least 1, got %d (leave it out to not keep by it)" % (key, value)
            )
        args += ["--" + key.replace("_", "-"), str(value)]
    within = policy.get("keep_within")
    if within is not None:
        if not isinstance(within, str) or not _DURATION.match(within):
            raise RetentionError(
                "retention.keep_within must be a restic duration such as 7d or 1y6m, got %r" % (within,)
            )
        args += ["--keep-within", within]
    tags = policy.get("keep_tags")
    if tags is not None:
        if isinstance(tags, str) or not isinstance(tags, (list, tuple)):
            raise RetentionError("retention.keep_tags must be a list of tags, got %r" % (tags,))
        for tag in tags:
            if not isinstance(tag, str) or not tag:
                raise RetentionError("retention.keep_tags entries must be non-empty strings, got %r" % (tag,))
            args += ["--keep-tag", tag]
    if not args:
        raise RetentionError("retention: the policy keeps nothing; give at least one of %s" % ", ".join(ALL_KEYS))
    return args
