# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dnscrypt_cloaking filter: dnscrypt-proxy cloaking rules from inventory."""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.selfhost.homelab.plugins.filter.fqdn import fqdn


def _address(value, field):
    if not isinstance(value, str):
        raise AnsibleFilterError(
            "dnscrypt_cloaking: %s must be an IP address string, got %s"
            % (field, type(value).__name__)
        )
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise AnsibleFilterError(
            "dnscrypt_cloaking: %s %r is not a valid IPv4 or IPv6 address"
            % (field, to_text(value))
        ) from None


def _name(value, field):
    """A full name (www.example.org) or a wildcard (*.example.org)."""
    if not isinstance(value, str):
        raise AnsibleFilterError(
            "dnscrypt_cloaking: %s must be a DNS name string, got %s"
            % (field, type(value).__name__)
        )
    name = value.strip().rstrip(".").lower()
    wildcard = name.startswith("*.")
    if wildcard:
        name = name[2:]
    try:
        name = fqdn("@", name)
    except AnsibleFilterError as exc:
        raise AnsibleFilterError(
            "dnscrypt_cloaking: %s %r is not a valid DNS name (%s)"
            % (field, to_text(value), to_text(exc))
        ) from None
    return "*." + name if wildcard else name


def dnscrypt_cloaking(domain, addresses, extra=None):
    """Return the text of a dnscrypt-proxy cloaking rules file.

    ``*.<domain>`` and ``<domain>`` point at every address in ``addresses``;
    ``extra`` adds entries ``{name: ..., address: ...}`` (``address`` may be a
    list) or rewrites to another name (``{name: ..., target: ...}``).
    """
    domain_name = fqdn("@", domain) if isinstance(domain, str) else _name(domain, "domain")
    if isinstance(addresses, str):
        addresses = [addresses]
    if not isinstance(addresses, (list, tuple)) or not addresses:
        raise AnsibleFilterError(
            "dnscrypt_cloaking: addresses must be a non-empty list of IP addresses "
            "(homelab_ingress_addresses)"
        )
    ingress = [_address(a, "addresses[%d]" % i) for i, a in enumerate(addresses)]

    rules = []
    for name in ("*." + domain_name, domain_name):
        rules.extend((name, a) for a in ingress)

    for i, entry in enumerate(extra or []):
        field = "extra[%d]" % i
        if not isinstance(entry, dict) or "name" not in entry:
            raise AnsibleFilterError(
                "dnscrypt_cloaking: %s must be a dict with name and address (or target)" % field
            )
        unknown = set(entry) - {"name", "address", "target"}
        if unknown:
            raise AnsibleFilterError(
                "dnscrypt_cloaking: %s has unknown keys %s" % (field, ", ".join(sorted(unknown)))
            )
        name = _name(entry["name"], field + ".name")
        if ("address" in entry) == ("target" in entry):
            raise AnsibleFilterError(
                "dnscrypt_cloaking: %s needs exactly one of address and target" % field
            )
        if "target" in entry:
            target = _name(entry["target"], field + ".target")
            if target.startswith("*."):
                raise AnsibleFilterError(
                    "dnscrypt_cloaking: %s.target %r must not be a wildcard"
                    % (field, to_text(entry["target"]))
                )
            rules.append((name, target))
            continue
        targets = entry["address"]
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not targets:
            raise AnsibleFilterError(
                "dnscrypt_cloaking: %s.address must be an IP address or a non-empty list of them" % field
            )
        rules.extend(
            (name, _address(a, "%s.address[%d]" % (field, j))) for j, a in enumerate(targets)
        )

    seen = set()
    lines = []
    for rule in rules:
        if rule not in seen:
            seen.add(rule)
            lines.append("%s %s" % rule)
    return "\n".join(lines) + "\n"


class FilterModule:
    """selfhost.homelab dnscrypt-proxy filters."""

    def filters(self):
        return {"dnscrypt_cloaking": dnscrypt_cloaking}
