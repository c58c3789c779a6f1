# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vault connection and authentication shared by the collection's Vault modules.

Each group of options is a class with its own ARGSPEC (documented once in the
``selfhost.homelab.vault`` doc fragment); a module merges them with
:func:`vault_argument_spec` and adds its own options. :class:`VaultClient`
is the one place that talks HTTP (through hvac's adapter): every answer is
checked there and every failure becomes a :class:`VaultError` with a one-line
message that says what to do.
"""

from __future__ import annotations

import os
import traceback

from ansible.module_utils.basic import env_fallback

HVAC_IMPORT_ERROR = None
try:
    import hvac
    import hvac.adapters
    import requests
except ImportError:
    HVAC_IMPORT_ERROR = traceback.format_exc()


class VaultError(Exception):
    """A failure with a one-line message; ``status`` is the HTTP status, if any."""

    def __init__(self, message, status=None):
        super(VaultError, self).__init__(message)
        self.status = status


class VaultConnection(object):
    """Where Vault is and how to reach it."""

    ARGSPEC = dict(
        url=dict(type='str', required=True, fallback=(env_fallback, ['VAULT_ADDR'])),
        ca_cert=dict(type='path', fallback=(env_fallback, ['VAULT_CACERT'])),
        validate_certs=dict(type='bool', default=True),
        namespace=dict(type='str', fallback=(env_fallback, ['VAULT_NAMESPACE'])),
        timeout=dict(type='int', default=30),
    )


class VaultAuth(object):
    """How to log in: a token, AppRole, or a signed JWT."""

    ARGSPEC = dict(
        auth_method=dict(type='str', default='token', choices=['token', 'approle', 'jwt']),
        auth_mount_point=dict(type='str'),
        token=dict(type='str', no_log=True, fallback=(env_fallback, ['VAULT_TOKEN'])),
        token_file=dict(type='path', default='~/.vault-token'),
        role_id=dict(type='str'),
        secret_id=dict(type='str', no_log=True),
        jwt=dict(type='str', no_log=True),
        jwt_role=dict(type='str'),
    )

    REQUIRED_IF = [
        ('auth_method', 'approle', ['role_id', 'secret_id']),
        ('auth_method', 'jwt', ['jwt', 'jwt_role']),
    ]


def vault_argument_spec(**module_options):
    spec = {}
    spec.update(VaultConnection.ARGSPEC)
    spec.update(VaultAuth.ARGSPEC)
    spec.update(module_options)
    return spec


def flatten_errors(body):
    """Vault's ``{"errors": [...]}`` as one line ("1 error occurred:\\n\\t* x" -> "x")."""
    if not isinstance(body, dict):
        return str(body or '').strip().replace('\n', ' ')
    messages = []
    for item in body.get('errors') or []:
        lines = [line.strip().lstrip('*').strip() for line in str(item).splitlines()]
        lines = [line for line in lines if line and not line.endswith('error occurred:')
                 and not line.endswith('errors occurred:')]
        messages.extend(lines)
    return '; '.join(messages)


class VaultClient(object):
    """An authenticated Vault client over hvac's raw adapter."""

    def __init__(self, params):
        if HVAC_IMPORT_ERROR:
            raise VaultError('hvac is required')  # modules check first, with missing_required_lib
        self.url = params['url'].rstrip('/')
        verify = params['validate_certs']
        if verify and params.get('ca_cert'):
            verify = params['ca_cert']
        self._hvac = hvac.Client(url=self.url, verify=verify, timeout=params['timeout'],
                                 namespace=params.get('namespace') or None,
                                 adapter=hvac.adapters.RawAdapter)
        self.params = params
        self.requests = []  # (method, path, status): what this run cost

    # -- HTTP -------------------------------------------------------------
    def call(self, method, path, json=None, params=None, ok=(200, 204), allow_404=False):
        """Send one request; return (status, decoded JSON body or None)."""
        url = '/v1/' + path.lstrip('/')
        try:
            resp = self._hvac.adapter.request(method, url, json=json, params=params, raise_exception=False)
        except requests.exceptions.SSLError as exc:
            raise VaultError('TLS error talking to Vault at %s: %s (set ca_cert, or validate_certs: false for a '
                             'test server)' % (self.url, _first_line(exc)))
        except requests.exceptions.ConnectionError as exc:
            raise VaultError('cannot reach Vault at %s: %s' % (self.url, _reason(exc)))
        except requests.exceptions.Timeout:
            raise VaultError('Vault at %s did not answer within %ss' % (self.url, self.params['timeout']))
        except requests.exceptions.RequestException as exc:
            raise VaultError('request to Vault at %s failed: %s' % (self.url, _first_line(exc)))
        status = resp.status_code
        self.requests.append((method, path, status))
        body = None
        if resp.content:
            try:
                body = resp.json()
            except ValueError:
                body = resp.text
        if status in ok or (allow_404 and status == 404):
            return status, body
        raise self.error(method, path, status, body)

    def error(self, method, path, status, body):
        detail = flatten_errors(body)
        where = '%s %s' % (method, path)
        if status == 403:
            return VaultError('permission denied (HTTP 403) on %s: the token is invalid or its policies do not '
                              'allow this%s' % (where, '' if detail in ('', 'permission denied')
                                                else ' (%s)' % detail), status)
        if status == 503:
            if 'sealed' in detail:
                return VaultError('Vault at %s is sealed (HTTP 503): unseal it, then run again' % self.url, status)
            return VaultError('Vault at %s is unavailable (HTTP 503) on %s: %s'
                              % (self.url, where, detail or 'no detail'), status)
        if status == 501:
            return VaultError('Vault at %s is not initialized (HTTP 501)' % self.url, status)
        if status == 429:
            return VaultError('Vault at %s is a standby or rate-limited (HTTP 429) on %s' % (self.url, where), status)
        return VaultError('Vault answered HTTP %d on %s: %s' % (status, where, detail or 'no detail'), status)

    # -- auth -------------------------------------------------------------
    def login(self):
        """Set the client token from the configured auth method; return the method used."""
        p = self.params
        method = p['auth_method']
        if method == 'token':
            token = p.get('token')
            if not token:
                path = os.path.expanduser(p['token_file']) if p.get('token_file') else None
                if path and os.path.isfile(path):
                    with open(path) as fh:
                        token = fh.read().strip()
            if not token:
                raise VaultError('no Vault token: set token (or VAULT_TOKEN), or write it to token_file (%s)'
                                 % p.get('token_file'))
            self._hvac.token = token
            return method
        if method == 'approle':
            mount = p.get('auth_mount_point') or 'approle'
            payload = {'role_id': p['role_id'], 'secret_id': p['secret_id']}
        else:
            mount = p.get('auth_mount_point') or 'jwt'
            payload = {'role': p['jwt_role'], 'jwt': p['jwt']}
        path = 'auth/%s/login' % mount.strip('/')
        try:
            _status, body = self.call('POST', path, json=payload)
        except VaultError as exc:
            raise VaultError('%s login failed: %s' % (method, exc), exc.status)
        token = ((body or {}).get('auth') or {}).get('client_token')
        if not token:
            raise VaultError('%s login at %s returned no client token' % (method, path))
        self._hvac.token = token
        return method


def _reason(exc):
    text = str(exc)
    for marker in ('Connection refused', 'Name or service not known', 'No route to host',
                   'Temporary failure in name resolution', 'timed out', 'Connection reset'):
        if marker in text:
            return marker.lower()
    return _first_line(exc)


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
