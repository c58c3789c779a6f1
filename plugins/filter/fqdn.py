# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fqdn filter: <subdomain>.<homelab_domain>, validated."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

# RFC 1123 host label: letters, digits and hyphens, 1-63 characters, no hyphen
# at either end. Underscores are not allowed in host names (certificates and
# Traefik Host() rules reject them).
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_MAX_NAME = 253


def _labels(value, field):
    if not isinstance(value, str):
        raise AnsibleFilterError(
            "fqdn: %s must be a string, got %s" % (field, type(value).__name__)
        )
    name = value.strip().rstrip(".").lower()
    if not name:
        raise AnsibleFilterError("fqdn: %s must not be empty" % field)
    labels = name.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise AnsibleFilterError(
                "fqdn: %s %r is not a valid DNS name: label %r must be 1-63 "
                "letters, digits or hyphens, not starting or ending with a hyphen"
                % (field, to_text(value), label)
            )
    return labels


def fqdn(subdomain, domain):
    """Join ``subdomain`` to ``domain`` and validate both as DNS names."""
    domain_labels = _labels(domain, "domain")
    if len(domain_labels) < 2:
        raise AnsibleFilterError(
            "fqdn: domain %r needs at least two labels (for example home.example.org)"
            % to_text(domain)
        )
    if subdomain == "@":
        labels = domain_labels
    elif subdomain == "*":
        labels = ["*"] + domain_labels
    else:
        labels = _labels(subdomain, "subdomain") + domain_labels
    name = ".".join(labels)
    if len(name) > _MAX_NAME:
        raise AnsibleFilterError(
            "fqdn: %r is %d characters long; a DNS name has at most %d"
            % (name, len(name), _MAX_NAME)
        )
    return name


class FilterModule:
    """selfhost.homelab DNS name filters."""

    def filters(self):
        return {"fqdn": fqdn}
