# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ACL policies and JWT auth roles of the vault_acl module: read all -> compare -> write what differs.

Pure helpers (validation, the duration parser, the role comparison, the diff) are
separate from the HTTP calls so unit tests can exercise them without a server.
API references: https://developer.hashicorp.com/vault/api-docs/system/policies and
https://developer.hashicorp.com/vault/api-docs/auth/jwt.
"""

from __future__ import annotations

import json
import re

from ansible_collections.selfhost.homelab.plugins.module_utils._vault import VaultError

# Role fields Vault stores as whole seconds (it accepts Go durations, "Nd" or seconds).
DURATION_FIELDS = frozenset([
    'token_period', 'token_ttl', 'token_max_ttl', 'token_explicit_max_ttl', 'ttl', 'max_ttl', 'period',
    'expiration_leeway', 'not_before_leeway', 'clock_skew_leeway',
])
# Role fields Vault stores as lists but also accepts as one comma-separated string.
LIST_FIELDS = frozenset([
    'token_policies', 'policies', 'bound_audiences', 'token_bound_cidrs', 'bound_cidrs',
    'allowed_redirect_uris', 'oidc_scopes',
])
# Deprecated role fields Vault reads into their token_* successor (and echoes only under that name
# once the successor is set), so a given legacy key is compared with its successor when absent.
LEGACY_FIELDS = {
    'ttl': 'token_ttl', 'max_ttl': 'token_max_ttl', 'period': 'token_period', 'policies': 'token_policies',
    'bound_cidrs': 'token_bound_cidrs', 'num_uses': 'token_num_uses',
}
POLICY_KEYS = ('name', 'policy')
ROLE_KEYS = ('name', 'role', 'mount')
MISSING = object()

_GO_UNITS = {'ns': 1e-9, 'us': 1e-6, '\u00b5s': 1e-6, 'ms': 1e-3, 's': 1, 'm': 60, 'h': 3600}
_GO_PART = re.compile(r'(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)')
_NUMBER = re.compile(r'^(\d+(?:\.\d*)?|\.\d+)$')
_NAME = re.compile(r'^[^\s?#%]+$')


def parse_duration(value, field='duration'):
    """Seconds Vault stores for ``value``: an int, a string of seconds, a Go duration ("1h30m"), or "Nd".

    Follows Vault's parseutil.ParseDurationSecond: a bare number is seconds, a trailing "d" means days
    (alone, "1d12h" is refused as Vault does), anything else is Go's time.ParseDuration, truncated to
    whole seconds. Raises VaultError naming ``field`` for anything Vault would refuse.
    """
    if isinstance(value, bool) or value is None:
        raise VaultError('%s: %r is not a duration (use seconds or a string like 30m, 1h30m, 90s)' % (field, value))
    if isinstance(value, (int, float)):
        if value < 0:
            raise VaultError('%s: %r must not be negative' % (field, value))
        return int(value)
    text = str(value).strip()
    bad = VaultError('%s: %r is not a duration (use seconds or a string like 30m, 1h30m, 90s)' % (field, value))
    if not text:
        raise bad
    if _NUMBER.match(text):
        return int(float(text))
    if text.endswith('d'):
        if not _NUMBER.match(text[:-1]):
            raise bad
        return int(float(text[:-1]) * 86400)
    total = 0.0
    pos = 0
    for match in _GO_PART.finditer(text):
        if match.start() != pos:
            raise bad
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise bad
    return int(total)


def normalize(key, value):
    """``value`` of role field ``key`` the way Vault stores it (durations in seconds, lists as lists)."""
    if key in DURATION_FIELDS and value is not None and value != '':
        return parse_duration(value, key)
    if key in LIST_FIELDS and isinstance(value, str):
        return [item.strip() for item in value.split(',') if item.strip()]
    return value


def _empty(value):
    return value is None or value == '' or value == [] or value == {}


def same(want, have):
    """Equal as JSON; an empty value given equals Vault's null (Vault echoes an unset map as null)."""
    if _empty(want) and _empty(have):
        return True
    return json.dumps(want, sort_keys=True) == json.dumps(have, sort_keys=True)


def stored_value(key, current):
    """Vault's value of role field ``key`` in ``current`` (a legacy key falls back to its successor)."""
    if key in current:
        return current[key]
    if key in LEGACY_FIELDS and LEGACY_FIELDS[key] in current:
        return current[LEGACY_FIELDS[key]]
    return MISSING


def role_differences(role, current):
    """Sorted keys of ``role`` whose value differs from Vault's ``current`` role (None: absent -> all keys).

    Only the given keys count; a given key Vault does not echo back counts as differing.
    """
    if current is None:
        return sorted(role)
    out = []
    for key, value in role.items():
        have = stored_value(key, current)
        if have is MISSING or not same(normalize(key, value), normalize(key, have)):
            out.append(key)
    return sorted(out)


def role_view(role, current):
    """(before, after) of the compared keys, as Vault stores them, for the diff."""
    before = {}
    if current is not None:
        for key in role:
            have = stored_value(key, current)
            if have is not MISSING:
                try:
                    before[key] = normalize(key, have)
                except VaultError:
                    before[key] = have
    after = dict((key, normalize(key, value)) for key, value in role.items())
    return before, after


def _check_name(where, item):
    name = item.get('name')
    if name is None or name == '':
        raise VaultError('%s.name is required' % where)
    if not isinstance(name, str):
        raise VaultError('%s.name must be a string, got %s' % (where, type(name).__name__))
    if not _NAME.match(name) or name.strip('/') != name:
        raise VaultError('%s.name %r must not contain spaces, "?", "#" or "%%", nor start or end with "/"'
                         % (where, name))
    return name


def _check_keys(where, item, allowed):
    if not isinstance(item, dict):
        raise VaultError('%s must be a dictionary with %s, got %s'
                         % (where, ', '.join(allowed), type(item).__name__))
    unknown = sorted(str(k) for k in item if k not in allowed)
    if unknown:
        raise VaultError('%s has unknown key(s) %s; expected %s' % (where, ', '.join(unknown), ', '.join(allowed)))


def validate(params):
    """Check every policy and role before anything is sent; return (policies, jwt_roles) normalised.

    Policies become ``{name, policy}``; roles ``{name, mount, role}`` with ``mount`` stripped of slashes.
    Raises VaultError naming the field and its index.
    """
    policies, seen = [], {}
    for index, item in enumerate(params.get('policies') or []):
        where = 'policies[%d]' % index
        _check_keys(where, item, POLICY_KEYS)
        name = _check_name(where, item)
        # Vault lower-cases policy names, so "Traefik" and "traefik" are the same policy.
        if name.lower() in seen:
            raise VaultError('%s.name %r is already given at policies[%d]' % (where, name, seen[name.lower()]))
        if name.lower() == 'root':
            raise VaultError('%s.name: the root policy cannot be changed' % where)
        seen[name.lower()] = index
        text = item.get('policy')
        if text is None or (isinstance(text, str) and not text.strip()):
            raise VaultError('%s.policy is required (the policy text, HCL or JSON)' % where)
        if not isinstance(text, str):
            raise VaultError('%s.policy must be a string (the policy text), got %s' % (where, type(text).__name__))
        policies.append({'name': name, 'policy': text})
    roles, seen = [], {}
    for index, item in enumerate(params.get('jwt_roles') or []):
        where = 'jwt_roles[%d]' % index
        _check_keys(where, item, ROLE_KEYS)
        name = _check_name(where, item)
        mount = item.get('mount')
        if mount is None:
            mount = 'jwt'
        if not isinstance(mount, str) or not mount.strip('/') or not _NAME.match(mount):
            raise VaultError('%s.mount %r must be the path of a JWT auth method (default jwt)' % (where, mount))
        mount = mount.strip('/')
        role = item.get('role')
        if role is None:
            raise VaultError('%s.role is required (the role fields, as for POST auth/%s/role/%s)'
                             % (where, mount, name))
        if not isinstance(role, dict):
            raise VaultError('%s.role must be a dictionary of role fields, got %s' % (where, type(role).__name__))
        if not role:
            raise VaultError('%s.role must not be empty' % where)
        for key, value in role.items():
            if not isinstance(key, str) or not key:
                raise VaultError('%s.role keys must be non-empty strings, got %r' % (where, key))
            if key in DURATION_FIELDS and value is not None and value != '':
                parse_duration(value, '%s.role.%s' % (where, key))
        try:
            json.dumps(role)
        except (TypeError, ValueError) as exc:
            raise VaultError('%s.role must be JSON-serialisable: %s' % (where, exc))
        # JWT role names are lower-cased by Vault too.
        ident = (mount, name.lower())
        if ident in seen:
            raise VaultError('%s.name %r is already given at jwt_roles[%d] (mount %s)'
                             % (where, name, seen[ident], mount))
        seen[ident] = index
        roles.append({'name': name, 'mount': mount, 'role': role})
    return policies, roles


def _data(body):
    """The ``data`` of a Vault answer (some endpoints also repeat it at the top level)."""
    if not isinstance(body, dict):
        return {}
    return body.get('data') if isinstance(body.get('data'), dict) else body


class ACL(object):
    """Policies and JWT roles over an authenticated VaultClient: every read first, then the writes."""

    def __init__(self, client, check_mode):
        self.client = client
        self.check_mode = check_mode

    @staticmethod
    def policy_path(name):
        return 'sys/policies/acl/%s' % name

    @staticmethod
    def role_path(mount, name):
        return 'auth/%s/role/%s' % (mount, name)

    def read_policy(self, name):
        status, body = self.client.call('GET', self.policy_path(name), allow_404=True)
        if status == 404:
            return None
        text = _data(body).get('policy')
        return text if isinstance(text, str) else ''

    def read_role(self, mount, name):
        status, body = self.client.call('GET', self.role_path(mount, name), allow_404=True)
        if status == 404:
            return None
        return _data(body)

    def run(self, policies, roles):
        plan = []  # (kind, item, path, payload) of what differs, in the order given
        result = {'changed': False, 'policies': [], 'jwt_roles': [], 'diff': []}
        for item in policies:
            current = self.read_policy(item['name'])
            changed = current != item['policy']
            path = self.policy_path(item['name'])
            result['policies'].append({'name': item['name'], 'changed': changed, 'created': current is None})
            if changed:
                plan.append((path, {'policy': item['policy']}))
                result['diff'].append({
                    'before_header': path if current is not None else '%s (absent)' % path,
                    'after_header': path,
                    'before': _text(current), 'after': _text(item['policy']),
                })
        for item in roles:
            current = self.read_role(item['mount'], item['name'])
            keys = role_differences(item['role'], current)
            path = self.role_path(item['mount'], item['name'])
            result['jwt_roles'].append({'name': item['name'], 'mount': item['mount'], 'changed': bool(keys),
                                        'created': current is None, 'differences': keys})
            if keys:
                plan.append((path, item['role']))
                before, after = role_view(item['role'], current)
                result['diff'].append({
                    'before_header': path if current is not None else '%s (absent)' % path,
                    'after_header': path,
                    'before': before, 'after': after,
                })
        result['changed'] = bool(plan)
        if not self.check_mode:
            done = []
            for path, payload in plan:
                try:
                    self.client.call('POST', path, json=payload)
                except VaultError as exc:
                    raise VaultError('%s%s' % (exc, ' (already written: %s)' % ', '.join(done) if done else ''),
                                     exc.status)
                done.append(path)
        result['requests'] = len(self.client.requests)
        return result


def _text(text):
    """Policy text for the diff, ending in a newline so the unified diff does not flag the last line."""
    if text is None:
        return ''
    return text if text.endswith('\n') else text + '\n'
