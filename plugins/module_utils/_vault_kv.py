# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KV v1/v2 logic of the vault_kv module: read current -> build desired -> compare -> write.

Pure helpers (validation, merge, diff) are separate from the HTTP calls so unit
tests can exercise them without a server. API references:
https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2 and .../kv-v1.
"""

from __future__ import annotations

import json
import re

from ansible_collections.selfhost.homelab.plugins.module_utils._vault import VaultError

REDACTED = '<redacted>'
REDACTED_CHANGED = '<redacted (changed)>'
V2_ONLY = ('cas', 'metadata', 'versions', 'destroy', 'delete_metadata')
_DURATION = re.compile(r'^(\d+|(\d+(\.\d+)?(ms|s|m|h|d))+)$')


def validate(params):
    """Fail on bad input before anything is sent. Returns nothing; raises VaultError."""
    mount = params['mount']
    if params.get('secrets') is not None:
        if not mount or not mount.strip('/'):
            raise VaultError('mount must not be empty')
        _validate_batch(params)
        return
    path = params.get('path')
    if path is None:
        raise VaultError('one of path or secrets is required')
    _validate_path(path, '')
    if not mount or not mount.strip('/'):
        raise VaultError('mount must not be empty')
    state = params['state']
    data = params.get('data')
    if state == 'present':
        _validate_data(data, params['merge'], '')
    elif data is not None:
        raise VaultError('data is only used with state=present')
    if params['merge'] and state != 'present':
        raise VaultError('merge is only used with state=present')
    _validate_cas(params.get('cas'), '')
    versions = params.get('versions')
    if versions is not None:
        if state != 'absent':
            raise VaultError('versions is only used with state=absent')
        if not versions or any(v < 1 for v in versions):
            raise VaultError('versions must be a non-empty list of version numbers >= 1')
    if params['destroy'] and state != 'absent':
        raise VaultError('destroy is only used with state=absent')
    if params['delete_metadata']:
        if state != 'absent':
            raise VaultError('delete_metadata is only used with state=absent')
        if versions is not None or params['destroy']:
            raise VaultError('delete_metadata removes every version and the metadata; do not combine it with '
                             'versions or destroy')
    if params.get('version') is not None:
        if state != 'read':
            raise VaultError('version is only used with state=read')
        if params['version'] < 1:
            raise VaultError('version must be >= 1')
    meta = params.get('metadata')
    if meta is not None:
        if state != 'present':
            raise VaultError('metadata is only used with state=present')
        if meta.get('max_versions') is not None and meta['max_versions'] < 0:
            raise VaultError('metadata.max_versions must be >= 0 (0 means the mount default)')
        dva = meta.get('delete_version_after')
        if dva is not None and not _DURATION.match(str(dva)):
            raise VaultError('metadata.delete_version_after %r is not a duration like 30d, 12h or 3600' % dva)
        custom = meta.get('custom_metadata')
        if custom is not None:
            if len(custom) > 64:
                raise VaultError('metadata.custom_metadata has %d keys; Vault allows at most 64' % len(custom))
            for k, v in custom.items():
                if not isinstance(v, str):
                    raise VaultError('metadata.custom_metadata.%s must be a string, got %s' % (k, type(v).__name__))
                if len(k) > 128 or len(v) > 512:
                    raise VaultError('metadata.custom_metadata.%s: keys are at most 128 and values at most 512 '
                                     'characters' % k)


# Options of the single-secret mode that have no meaning (or no per-item form) with ``secrets``.
SINGLE_ONLY = ('path', 'data', 'cas', 'metadata', 'versions', 'version')
PER_ITEM = ('path', 'data', 'cas')


def _validate_path(path, where):
    if not path or not path.strip('/'):
        raise VaultError('%spath must not be empty' % where)
    if '//' in path.strip('/') or any(seg in ('.', '..') for seg in path.strip('/').split('/')):
        raise VaultError('%spath %r must be a relative secret path without empty, "." or ".." segments'
                         % (where, path))


def _validate_data(data, merge, where):
    if data is None:
        raise VaultError('%sdata is required with state=present' % where)
    if not isinstance(data, dict):
        raise VaultError('%sdata must be a dictionary of fields, got %s' % (where, type(data).__name__))
    for key in data:
        if not isinstance(key, str) or not key:
            raise VaultError('%sdata keys must be non-empty strings, got %r' % (where, key))
    if not data and not merge:
        raise VaultError('%sdata must not be empty (Vault refuses an empty secret); use state=absent to delete'
                         % where)
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise VaultError('%sdata must be JSON-serialisable: %s' % (where, exc))


def _validate_cas(cas, where):
    if cas is not None and cas < 0:
        raise VaultError('%scas must be 0 (create only) or a positive version number, got %d' % (where, cas))


def batch_items(params):
    """The items of ``secrets``, normalised: path stripped of slashes, merge defaulting to the top-level one."""
    items = []
    for item in params['secrets']:
        merge = item.get('merge')
        items.append({'path': item['path'].strip('/'), 'data': item['data'],
                      'merge': params['merge'] if merge is None else merge, 'cas': item.get('cas')})
    return items


def _validate_batch(params):
    """Every item of ``secrets``, all before the first request; messages name the item (secrets[3].path)."""
    if params['state'] != 'present':
        raise VaultError('secrets is only used with state=present, not state=%s' % params['state'])
    for name in SINGLE_ONLY:
        if params.get(name) is not None:
            if name in PER_ITEM:
                raise VaultError('%s cannot be combined with secrets; give it in each item (secrets[].%s)'
                                 % (name, name))
            raise VaultError('%s cannot be combined with secrets; use a task for that one secret' % name)
    secrets = params['secrets']
    if not isinstance(secrets, list):
        raise VaultError('secrets must be a list of dictionaries with path and data')
    seen = {}
    for index, item in enumerate(secrets):
        where = 'secrets[%d].' % index
        if not isinstance(item, dict):
            raise VaultError('secrets[%d] must be a dictionary with path and data, got %s'
                             % (index, type(item).__name__))
        path = item.get('path')
        if path is None:
            raise VaultError('%spath is required' % where)
        if not isinstance(path, str):
            raise VaultError('%spath must be a string, got %s' % (where, type(path).__name__))
        _validate_path(path, where)
        merge = item.get('merge')
        _validate_data(item.get('data'), params['merge'] if merge is None else merge, where)
        _validate_cas(item.get('cas'), where)
        key = path.strip('/')
        if key in seen:
            raise VaultError('%spath %r is given twice (also secrets[%d]); give each secret once'
                             % (where, key, seen[key]))
        seen[key] = index


def check_engine_options(params, version):
    if version == 1 and params.get('secrets') is not None:
        for index, item in enumerate(params['secrets']):
            if item.get('cas') is not None:
                raise VaultError('secrets[%d].cas only applies to KV version 2, but mount %r is KV version 1'
                                 % (index, params['mount']))
    if version == 1:
        used = [name for name in V2_ONLY if params.get(name) is not None and params.get(name) is not False]
        if used:
            raise VaultError('%s only applies to KV version 2, but mount %r is KV version 1'
                             % (', '.join(used), params['mount']))
        if params.get('version') is not None:
            raise VaultError('version only applies to KV version 2, but mount %r is KV version 1' % params['mount'])


def desired_data(current, data, merge):
    """The secret to store: ``data`` itself, or ``current`` patched with it (None removes a key)."""
    if not merge:
        return dict(data)
    out = dict(current or {})
    for key, value in data.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def redacted_diff(before, after, show_values=False):
    """Diff dictionaries with values replaced unless ``show_values``."""
    if show_values:
        return dict(before or {}), dict(after or {})
    before_r = dict((k, REDACTED) for k in (before or {}))
    after_r = {}
    for key, value in (after or {}).items():
        unchanged = before is not None and key in before and _same(before[key], value)
        after_r[key] = REDACTED if unchanged else REDACTED_CHANGED
    return before_r, after_r


def _same(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _duration_seconds(value):
    text = str(value)
    if text.isdigit():
        return int(text)
    units = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400}
    return int(sum(float(n) * units[u] for n, _f, u in re.findall(r'(\d+(\.\d+)?)(ms|s|m|h|d)', text)))


class KV(object):
    """Secrets on one mount, over an authenticated VaultClient: one (O(path)) or many (O(secrets))."""

    def __init__(self, client, params, check_mode):
        self.client = client
        self.p = params
        self.check_mode = check_mode
        self.mount = params['mount'].strip('/')
        self.path = (params.get('path') or '').strip('/')

    # -- engine -----------------------------------------------------------
    def engine_version(self):
        given = self.p['engine_version']
        if given != 'auto':
            return int(given)
        # The endpoint the Vault CLI uses: open to any token that can use the mount.
        try:
            _s, body = self.client.call('GET', 'sys/internal/ui/mounts/%s' % self.mount)
        except VaultError as exc:
            if exc.status == 403:
                raise VaultError('cannot detect the KV version of mount %r (HTTP 403): the mount does not exist, '
                                 'or the token is invalid or may not use it' % self.mount, 403)
            raise
        data = (body or {}).get('data') or {}
        mtype = data.get('type')
        if mtype not in ('kv', 'generic'):
            raise VaultError('mount %r is a %r secrets engine, not KV' % (self.mount, mtype))
        return 2 if str((data.get('options') or {}).get('version', '1')) == '2' else 1

    # -- v2 ---------------------------------------------------------------
    def _v2_read(self, version=None, path=None):
        """(exists, data or None, metadata-of-version or None, current_version)."""
        params = {'version': version} if version else None
        status, body = self.client.call('GET', '%s/data/%s' % (self.mount, path or self.path), params=params,
                                        allow_404=True)
        data = (body or {}).get('data') if isinstance(body, dict) else None
        if status == 404:
            meta = (data or {}).get('metadata') if data else None
            return False, None, meta, (meta or {}).get('version', 0) if meta else 0
        return True, data.get('data') or {}, data.get('metadata') or {}, (data.get('metadata') or {}).get(
            'version', 0)

    def _v2_metadata(self):
        status, body = self.client.call('GET', '%s/metadata/%s' % (self.mount, self.path), allow_404=True)
        if status == 404:
            return None
        return (body or {}).get('data') or {}

    def _v2_metadata_changes(self, exists, vmeta):
        """(before, after) of the O(metadata) keys that differ from what Vault holds."""
        meta_want = dict((k, v) for k, v in (self.p.get('metadata') or {}).items() if v is not None)
        meta_before, meta_after = {}, {}
        if not meta_want:
            return meta_before, meta_after
        if set(meta_want) == {'custom_metadata'} and exists:
            have = {'custom_metadata': (vmeta or {}).get('custom_metadata') or {}}
        else:
            full = self._v2_metadata() or {}
            have = {'custom_metadata': full.get('custom_metadata') or {},
                    'max_versions': full.get('max_versions', 0),
                    'cas_required': full.get('cas_required', False),
                    'delete_version_after': full.get('delete_version_after', '0s')}
        for key, want in meta_want.items():
            now = have.get(key)
            if key == 'delete_version_after':
                equal = _duration_seconds(now or 0) == _duration_seconds(want)
            else:
                equal = _same(now, want)
            if not equal:
                meta_before[key] = now
                meta_after[key] = want
        return meta_before, meta_after

    def _v2_plan(self, path, data, merge, cas, where=''):
        """Read one secret and decide; raises (naming ``where``) before anything is written."""
        exists, current, vmeta, current_version = self._v2_read(path=path)
        desired = desired_data(current if exists else {}, data, merge)
        if not desired:
            raise VaultError('%sthe merged secret would have no fields left; use state=absent to delete it' % where)
        changed = not (exists and _same(current, desired))
        # CAS is checked here too, so a mismatch fails before anything is written.
        if changed and cas is not None and cas != current_version:
            raise VaultError('%scheck-and-set failed: cas=%d but the current version of %s/%s is %d; nothing '
                             'was written' % (where, cas, self.mount, path, current_version))
        return {'path': path, 'exists': exists, 'current': current, 'desired': desired, 'changed': changed,
                'cas': cas if cas is not None else current_version, 'version': current_version, 'vmeta': vmeta,
                'created': not exists and current_version == 0}

    def _v2_write(self, plan):
        """Write a changed secret (or, in check mode, say which version it would get)."""
        if self.check_mode:
            return plan['version'] + 1
        payload = {'data': plan['desired'], 'options': {'cas': plan['cas']}}
        _s, body = self.client.call('POST', '%s/data/%s' % (self.mount, plan['path']), json=payload)
        return ((body or {}).get('data') or {}).get('version', plan['version'] + 1)

    def _v2_diff(self, plan, new_version):
        before, after = redacted_diff(plan['current'] if plan['exists'] else None,
                                      plan['desired'] if plan['changed'] else plan['current'],
                                      self.p['diff_show_values'])
        return ({} if plan['created'] else {'data': before, 'version': plan['version']},
                {'data': after, 'version': new_version})

    def v2_present(self):
        plan = self._v2_plan(self.path, self.p['data'], self.p['merge'], self.p.get('cas'))
        meta_before, meta_after = self._v2_metadata_changes(plan['exists'], plan['vmeta'])
        result = {'changed': plan['changed'] or bool(meta_after), 'created': plan['created'],
                  'version': plan['version']}
        if meta_after and not self.check_mode:
            self.client.call('POST', '%s/metadata/%s' % (self.mount, self.path), json=meta_after)
        if plan['changed']:
            result['version'] = self._v2_write(plan)
        before, after = self._v2_diff(plan, result['version'])
        if before:
            before['metadata'] = meta_before
        after['metadata'] = meta_after
        result['diff'] = {'before': before, 'after': after}
        return result

    def v2_absent(self):
        meta = self._v2_metadata()
        if meta is None:
            return {'changed': False, 'versions': [], 'diff': {'before': {}, 'after': {}}}
        versions = meta.get('versions') or {}
        current = meta.get('current_version', 0)
        if self.p['delete_metadata']:
            if not self.check_mode:
                self.client.call('DELETE', '%s/metadata/%s' % (self.mount, self.path))
            return {'changed': True, 'versions': sorted(int(v) for v in versions),
                    'diff': {'before': {'versions': sorted(int(v) for v in versions)}, 'after': {}}}
        wanted = self.p.get('versions') or [current]
        if self.p['destroy']:
            todo = [v for v in wanted if str(v) in versions and not versions[str(v)].get('destroyed')]
            endpoint, action = 'destroy', 'destroyed'
        else:
            todo = [v for v in wanted if str(v) in versions and not versions[str(v)].get('destroyed')
                    and not versions[str(v)].get('deletion_time')]
            endpoint, action = 'delete', 'deleted'
        if todo and not self.check_mode:
            if endpoint == 'delete' and self.p.get('versions') is None:
                self.client.call('DELETE', '%s/data/%s' % (self.mount, self.path))
            else:
                self.client.call('POST', '%s/%s/%s' % (self.mount, endpoint, self.path), json={'versions': todo})
        return {'changed': bool(todo), 'versions': sorted(todo),
                'diff': {'before': {action: []}, 'after': {action: sorted(todo)}}}

    def v2_read(self):
        exists, current, vmeta, version = self._v2_read(self.p.get('version'))
        return {'changed': False, 'exists': exists, 'data': current if exists else {},
                'metadata': vmeta or {}, 'version': version}

    # -- v1 ---------------------------------------------------------------
    def _v1_read(self, path=None):
        status, body = self.client.call('GET', '%s/%s' % (self.mount, path or self.path), allow_404=True)
        if status == 404:
            return False, None
        return True, (body or {}).get('data') or {}

    def _v1_plan(self, path, data, merge, where=''):
        exists, current = self._v1_read(path)
        desired = desired_data(current if exists else {}, data, merge)
        if not desired:
            raise VaultError('%sthe merged secret would have no fields left; use state=absent to delete it' % where)
        return {'path': path, 'exists': exists, 'current': current, 'desired': desired, 'created': not exists,
                'changed': not (exists and _same(current, desired))}

    def _v1_write(self, plan):
        if not self.check_mode:
            self.client.call('POST', '%s/%s' % (self.mount, plan['path']), json=plan['desired'])

    def _v1_diff(self, plan):
        before, after = redacted_diff(plan['current'] if plan['exists'] else None,
                                      plan['desired'] if plan['changed'] else plan['current'],
                                      self.p['diff_show_values'])
        return {'data': before} if plan['exists'] else {}, {'data': after}

    def v1_present(self):
        plan = self._v1_plan(self.path, self.p['data'], self.p['merge'])
        if plan['changed']:
            self._v1_write(plan)
        before, after = self._v1_diff(plan)
        return {'changed': plan['changed'], 'created': plan['created'], 'diff': {'before': before, 'after': after}}

    def v1_absent(self):
        exists, current = self._v1_read()
        if exists and not self.check_mode:
            self.client.call('DELETE', '%s/%s' % (self.mount, self.path))
        before, _after = redacted_diff(current if exists else None, None, self.p['diff_show_values'])
        return {'changed': exists, 'diff': {'before': {'data': before} if exists else {}, 'after': {}}}

    def v1_read(self):
        exists, current = self._v1_read()
        return {'changed': False, 'exists': exists, 'data': current or {}}

    # -- many secrets (O(secrets)) -----------------------------------------
    def present_many(self, version):
        """Read every secret first (any refusal fails here, before a write), then write those that differ."""
        plans = []
        for index, item in enumerate(batch_items(self.p)):
            where = 'secrets[%d] (%s): ' % (index, item['path'])
            if version == 2:
                plans.append(self._v2_plan(item['path'], item['data'], item['merge'], item['cas'], where))
            else:
                plans.append(self._v1_plan(item['path'], item['data'], item['merge'], where))
        secrets, diffs, done = [], [], []
        for index, plan in enumerate(plans):
            new_version = plan.get('version')
            if plan['changed']:
                try:
                    if version == 2:
                        new_version = self._v2_write(plan)
                    else:
                        self._v1_write(plan)
                except VaultError as exc:
                    raise VaultError('secrets[%d] (%s): %s%s' % (
                        index, plan['path'], exc,
                        ' (already written: %s)' % ', '.join(done) if done else '; nothing was written'), exc.status)
                done.append(plan['path'])
                before, after = self._v2_diff(plan, new_version) if version == 2 else self._v1_diff(plan)
                api_path = self._api_path(version, plan['path'])
                diffs.append({'before_header': api_path if plan['exists'] else '%s (absent)' % api_path,
                              'after_header': api_path, 'before': before, 'after': after})
            secrets.append({'path': plan['path'], 'changed': plan['changed'], 'created': plan['created'],
                            'version': new_version if version == 2 else None})
        return {'changed': bool(done), 'secrets': secrets, 'diff': diffs}

    def _api_path(self, version, path):
        return '%s/data/%s' % (self.mount, path) if version == 2 else '%s/%s' % (self.mount, path)

    def run(self):
        version = self.engine_version()
        check_engine_options(self.p, version)
        if self.p.get('secrets') is not None:
            result = self.present_many(version)
            result['engine_version'] = version
            result['mount'] = self.mount
        else:
            state = self.p['state']
            handler = getattr(self, 'v%d_%s' % (version, state))
            result = handler()
            result['engine_version'] = version
            result['mount'] = self.mount
            result['path'] = self.path
            if version == 1:
                result.setdefault('version', None)
        result['requests'] = len(self.client.requests)
        return result
