# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ACL policies and tokens of the consul_acl module: read all -> compare -> write what differs.

Reads are the cheapest that still compare exactly:
- policies: one ``GET /v1/acl/policies``. Its stubs carry no Rules, but they carry each policy's
  content hash, which Consul computes as blake2b-256 over Name, Description, Rules and the
  Datacenters, in that order (ACLPolicy.SetHash in agent/structs/acl.go; the enterprise namespace
  and partition are added only in Consul Enterprise). With the stub's own Name, Description and
  Datacenters around our Rules, equal hashes mean equal Rules. A policy whose hash differs is read
  in full (``GET /v1/acl/policy/<id>``) and its Rules compared as text, so a hash computed another
  way only costs a read, never a wrong answer.
- tokens: one ``GET /v1/acl/tokens``. Consul 1.9 and later put each token's SecretID in the list
  for a caller with acl:write; when the list carries none (Consul 1.8, or a token with acl:read
  only, which sees ``<hidden>``), each token is read with its own secret (``GET /v1/acl/token/self``;
  401/403 means it does not exist), as the consul role did before.
API references: https://developer.hashicorp.com/consul/api-docs/acl/policies and
https://developer.hashicorp.com/consul/api-docs/acl/tokens.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import quote

from ansible_collections.selfhost.homelab.plugins.module_utils._consul import ConsulError

POLICY_KEYS = ('name', 'rules', 'description')
TOKEN_KEYS = ('name', 'secret_id', 'policies', 'description')
# Consul's policy names: letters, digits, "-" and "_", 1 to 128 characters (agent/consul/acl_endpoint.go).
_POLICY_NAME = re.compile(r'^[A-Za-z0-9\-_]{1,128}$')
_UUID = re.compile(r'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')
# What Consul shows instead of a SecretID to a caller without acl:write.
REDACTED = '<hidden>'
# Token fields a token update would reset when left out, carried over from Consul's copy.
KEPT_TOKEN_FIELDS = ('Local', 'Roles', 'ServiceIdentities', 'NodeIdentities', 'TemplatedPolicies')


# ---- validation (before any request) ------------------------------------------------------------

def _check_dict(where, item, allowed):
    if not isinstance(item, dict):
        raise ConsulError('%s must be a dictionary with %s, got %s' % (where, ', '.join(allowed), type(item).__name__))
    unknown = sorted(str(k) for k in item if k not in allowed)
    if unknown:
        raise ConsulError('%s has unknown key(s) %s; expected %s' % (where, ', '.join(unknown), ', '.join(allowed)))


def _check_string(where, value, required=True):
    if value is None or (required and value == ''):
        if required:
            raise ConsulError('%s is required' % where)
        return None
    if not isinstance(value, str):
        raise ConsulError('%s must be a string, got %s' % (where, type(value).__name__))
    return value


def _check_policy_name(where, name):
    name = _check_string(where, name)
    if not _POLICY_NAME.match(name):
        raise ConsulError('%s %r must be 1 to 128 letters, digits, "-" or "_" (Consul\'s policy names)' % (where, name))
    return name


def validate(params):
    """Check every policy and token before anything is sent; return (policies, tokens) normalised.

    Policies become ``{name, rules, description}`` and tokens ``{name, secret_id, policies, description}``,
    ``description`` None when not given. Raises ConsulError naming the field and its index.
    """
    policies, seen = [], {}
    for index, item in enumerate(params.get('policies') or []):
        where = 'policies[%d]' % index
        _check_dict(where, item, POLICY_KEYS)
        name = _check_policy_name(where + '.name', item.get('name'))
        # Consul looks policy names up regardless of case, so "Web" and "web" are one policy.
        if name.lower() in seen:
            raise ConsulError('%s.name %r is already given at policies[%d]' % (where, name, seen[name.lower()]))
        seen[name.lower()] = index
        rules = item.get('rules')
        if rules is None:
            raise ConsulError('%s.rules is required (the policy rules, HCL or JSON)' % where)
        if not isinstance(rules, str):
            raise ConsulError('%s.rules must be a string (the policy rules), got %s' % (where, type(rules).__name__))
        description = _check_string(where + '.description', item.get('description'), required=False)
        policies.append({'name': name, 'rules': rules, 'description': description})
    tokens, names, secrets = [], {}, {}
    for index, item in enumerate(params.get('tokens') or []):
        where = 'tokens[%d]' % index
        _check_dict(where, item, TOKEN_KEYS)
        name = _check_string(where + '.name', item.get('name'))
        if name in names:
            raise ConsulError('%s.name %r is already given at tokens[%d]' % (where, name, names[name]))
        names[name] = index
        secret = _check_string(where + '.secret_id', item.get('secret_id'))
        if not _UUID.match(secret):
            # The secret itself is never part of a message.
            raise ConsulError('%s.secret_id must be a UUID (Consul accepts no other SecretID)' % where)
        if secret.lower() in secrets:
            raise ConsulError('%s.secret_id is the same as tokens[%d].secret_id' % (where, secrets[secret.lower()]))
        secrets[secret.lower()] = index
        links = item.get('policies')
        if links is None:
            raise ConsulError('%s.policies is required (a list of policy names, may be empty)' % where)
        if not isinstance(links, list):
            raise ConsulError('%s.policies must be a list of policy names, got %s' % (where, type(links).__name__))
        for pos, link in enumerate(links):
            _check_policy_name('%s.policies[%d]' % (where, pos), link)
        if len(set(link.lower() for link in links)) != len(links):
            raise ConsulError('%s.policies names a policy twice' % where)
        description = _check_string(where + '.description', item.get('description'), required=False)
        tokens.append({'name': name, 'secret_id': secret, 'policies': list(links), 'description': description})
    return policies, tokens


# ---- comparison (pure) --------------------------------------------------------------------------

def policy_hash(name, description, rules, datacenters):
    """Consul's content hash of a policy, base64 as the API shows it (ACLPolicy.SetHash)."""
    digest = hashlib.blake2b(digest_size=32)
    for part in [name, description or '', rules] + list(datacenters or []):
        digest.update(part.encode('utf-8'))
    return base64.b64encode(digest.digest()).decode('ascii')


def policy_links(current):
    """Names of the policies linked to a token as Consul returns it."""
    return [link.get('Name') for link in (current.get('Policies') or []) if isinstance(link, dict)]


def token_differences(want, current):
    """Sorted fields of ``want`` that differ from Consul's ``current`` token (None: absent -> all)."""
    if current is None:
        return sorted(['secret_id', 'policies'] + (['description'] if want['description'] is not None else []))
    out = []
    have = [str(name).lower() for name in policy_links(current)]
    if any(name.lower() not in have for name in want['policies']):
        out.append('policies')
    if want['description'] is not None and want['description'] != (current.get('Description') or ''):
        out.append('description')
    return out


def token_body(want, current):
    """The JSON body that creates ``want`` or updates ``current`` with it.

    An update adds the missing policies to those the token has (nothing is removed), keeps its
    description unless one is given, and carries over the fields an update would otherwise reset.
    """
    if current is None:
        return {'SecretID': want['secret_id'],
                'Description': want['description'] if want['description'] is not None else want['name'],
                'Policies': [{'Name': name} for name in want['policies']]}
    have = policy_links(current)
    lower = [str(name).lower() for name in have]
    body = {'AccessorID': current['AccessorID'], 'SecretID': want['secret_id'],
            'Description': want['description'] if want['description'] is not None else current.get('Description', ''),
            'Policies': [{'Name': name} for name in have + [n for n in want['policies'] if n.lower() not in lower]]}
    for field in KEPT_TOKEN_FIELDS:
        if current.get(field) not in (None, [], ''):
            body[field] = current[field]
    return body


def token_view(current, want=None):
    """What the diff shows of a token: description and policy names, never the secret."""
    if current is None and want is None:
        return {}
    if want is None:
        return {'accessor_id': current.get('AccessorID'), 'description': current.get('Description', ''),
                'policies': policy_links(current)}
    body = token_body(want, current)
    return {'accessor_id': current.get('AccessorID') if current else '(new)', 'description': body['Description'],
            'policies': [link['Name'] for link in body['Policies']]}


def _text(text):
    """Rules for the diff, ending in a newline so the unified diff does not flag the last line."""
    if text is None:
        return ''
    return text if text.endswith('\n') else text + '\n'


# ---- the run ------------------------------------------------------------------------------------

class ACL(object):
    """Policies and tokens over a ConsulClient: every read first, then the writes that differ."""

    def __init__(self, client, check_mode):
        self.client = client
        self.check_mode = check_mode

    def list_policies(self):
        body = self.client.call('GET', 'acl/policies')[1] or []
        return dict((str(stub.get('Name')).lower(), stub) for stub in body if isinstance(stub, dict))

    def read_policy(self, stub, want):
        """Consul's Rules of an existing policy: from the hash when it matches, else one read."""
        if stub.get('Hash') == policy_hash(stub.get('Name', ''), stub.get('Description'), want['rules'],
                                           stub.get('Datacenters')):
            return want['rules']
        status, body = self.client.call('GET', 'acl/policy/%s' % quote(stub['ID'], safe=''), absent=(403, 404))
        if status != 200 or not isinstance(body, dict):
            return None
        rules = body.get('Rules')
        return rules if isinstance(rules, str) else ''

    def read_tokens(self, tokens):
        """{secret_id: Consul's token or None} for every wanted token."""
        if not tokens:
            return {}
        listing = self.client.call('GET', 'acl/tokens')[1] or []
        listing = [stub for stub in listing if isinstance(stub, dict)]
        if listing and all(stub.get('SecretID') not in (None, '', REDACTED) for stub in listing):
            by_secret = dict((stub['SecretID'].lower(), stub) for stub in listing)
            return dict((want['secret_id'], by_secret.get(want['secret_id'].lower())) for want in tokens)
        found = {}
        for want in tokens:
            status, body = self.client.call('GET', 'acl/token/self', token=want['secret_id'], absent=(401, 403))
            found[want['secret_id']] = body if status == 200 and isinstance(body, dict) else None
        return found

    def run(self, policies, tokens):
        plan = []  # (what, method, path, body) in the order given: policies first, then tokens
        result = {'changed': False, 'policies': [], 'tokens': [], 'created_tokens': [], 'diff': []}
        stubs = self.list_policies() if policies or tokens else {}
        for want in policies:
            stub = stubs.get(want['name'].lower())
            rules = self.read_policy(stub, want) if stub is not None else None
            if stub is not None and rules is None:
                stub = None  # deleted between the list and the read
            differences = []
            if stub is None:
                differences = (['description'] if want['description'] is not None else []) + ['rules']
            else:
                if rules != want['rules']:
                    differences.append('rules')
                if want['description'] is not None and want['description'] != (stub.get('Description') or ''):
                    differences.append('description')
            path = 'acl/policy/%s' % want['name']
            result['policies'].append({'name': want['name'], 'changed': bool(differences), 'created': stub is None,
                                       'differences': differences})
            if not differences:
                continue
            description = want['description']
            if description is None:
                description = stub.get('Description', '') if stub is not None else ''
            body = {'Name': want['name'], 'Description': description, 'Rules': want['rules']}
            if stub is None:
                plan.append(('policy ' + want['name'], 'PUT', 'acl/policy', body))
            else:
                # Keep Consul's spelling of the name: a name given in another case is the same policy.
                body.update(ID=stub['ID'], Name=stub.get('Name') or want['name'])
                if stub.get('Datacenters'):
                    body['Datacenters'] = stub['Datacenters']
                plan.append(('policy ' + want['name'], 'PUT', 'acl/policy/%s' % quote(stub['ID'], safe=''), body))
            before = {} if stub is None else {'description': stub.get('Description') or '', 'rules': _text(rules)}
            result['diff'].append({
                'before_header': path if stub is not None else '%s (absent)' % path,
                'after_header': path,
                'before': before, 'after': {'description': description, 'rules': _text(want['rules'])},
            })
        known = set(stubs) | set(want['name'].lower() for want in policies)
        for index, want in enumerate(tokens):
            unknown = [name for name in want['policies'] if name.lower() not in known]
            if unknown:
                raise ConsulError('tokens[%d].policies: no policy named %s in Consul nor in policies'
                                  % (index, ', '.join(unknown)))
        current_tokens = self.read_tokens(tokens)
        for want in tokens:
            current = current_tokens.get(want['secret_id'])
            differences = token_differences(want, current)
            entry = {'name': want['name'], 'changed': bool(differences), 'created': current is None,
                     'differences': differences, 'accessor_id': current.get('AccessorID') if current else None}
            result['tokens'].append(entry)
            if current is None:
                result['created_tokens'].append(want['name'])
            if not differences:
                continue
            header = 'acl/token (%s)' % want['name']
            if current is None:
                plan.append(('token ' + want['name'], 'PUT', 'acl/token', token_body(want, None)))
            else:
                plan.append(('token ' + want['name'], 'PUT', 'acl/token/%s' % quote(current['AccessorID'], safe=''),
                             token_body(want, current)))
            result['diff'].append({
                'before_header': header if current is not None else '%s (absent)' % header,
                'after_header': header,
                'before': token_view(current), 'after': token_view(current, want),
            })
        result['changed'] = bool(plan)
        if not self.check_mode:
            done = []
            for what, method, path, body in plan:
                try:
                    answer = self.client.call(method, path, body=body)[1]
                except ConsulError as exc:
                    raise ConsulError('%s: %s%s' % (what, exc, ' (already written: %s)' % ', '.join(done)
                                                    if done else ''))
                done.append(what)
                if what.startswith('token ') and isinstance(answer, dict):
                    for entry in result['tokens']:
                        if 'token ' + entry['name'] == what:
                            entry['accessor_id'] = answer.get('AccessorID', entry['accessor_id'])
        result['requests'] = len(self.client.requests)
        return result
