# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the Consul HTTP API connection (options, client) shared by the selfhost.homelab Consul modules.

Plain ``open_url`` from ansible-core: the target needs no Python library beyond Ansible's own.
"""

from __future__ import annotations

import json
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import open_url

CONNECTION_ARGSPEC = dict(
    url=dict(type='str', default='http://127.0.0.1:8500', fallback=(env_fallback, ['CONSUL_HTTP_ADDR'])),
    token=dict(type='str', no_log=True, fallback=(env_fallback, ['CONSUL_HTTP_TOKEN'])),
    ca_cert=dict(type='path', fallback=(env_fallback, ['CONSUL_CACERT'])),
    validate_certs=dict(type='bool', default=True),
    timeout=dict(type='int', default=10),
)


def consul_argument_spec(**options):
    """The connection options plus a module's own ``options``."""
    spec = dict(CONNECTION_ARGSPEC)
    spec.update(options)
    return spec


class ConsulError(Exception):
    """A failure with a one-line message fit for fail_json."""


def _one_line(text):
    return ' '.join(to_text(text).split())


class ConsulClient(object):
    """Requests to Consul's HTTP API through Ansible's open_url; counts every request it sends."""

    def __init__(self, params):
        url = (params.get('url') or 'http://127.0.0.1:8500').rstrip('/')
        if '://' not in url:
            # CONSUL_HTTP_ADDR may be host:port alone; Consul's own CLI then speaks plain HTTP.
            url = 'http://' + url
        split = urlsplit(url)
        if split.scheme not in ('http', 'https') or not split.hostname:
            raise ConsulError('url: %r is not an http(s) URL' % url)
        self.url = url
        self.token = params.get('token') or None
        self.validate_certs = params.get('validate_certs', True)
        self.ca_cert = params.get('ca_cert') or None
        self.timeout = params.get('timeout') or 10
        self.requests = []

    def call(self, method, path, body=None, token=None, absent=()):
        """(status, parsed JSON) of ``METHOD /v1/<path>``; a status in ``absent`` is an answer, any other
        non-2xx raises ConsulError. ``token`` replaces the module's token for this request."""
        headers = {'Accept': 'application/json'}
        secret = token if token is not None else self.token
        if secret:
            headers['X-Consul-Token'] = secret
        data = None
        if body is not None:
            data = json.dumps(body)
            headers['Content-Type'] = 'application/json'
        self.requests.append('%s %s' % (method, path))
        try:
            resp = open_url(self.url + '/v1/' + path, method=method, data=data, headers=headers,
                            validate_certs=self.validate_certs, ca_path=self.ca_cert, timeout=self.timeout,
                            follow_redirects='none', use_proxy=True)
            status, raw = resp.getcode(), resp.read()
        except HTTPError as exc:
            status = exc.code
            try:
                raw = exc.read()
            except Exception:  # pylint: disable=broad-except
                raw = b''
            if status not in absent:
                raise ConsulError('%s /v1/%s: HTTP %d: %s' % (method, path, status, _one_line(raw) or exc.reason))
            return status, None
        except URLError as exc:
            raise ConsulError('%s /v1/%s: cannot reach Consul at %s: %s'
                              % (method, path, self.url, _one_line(exc.reason)))
        except (OSError, ValueError) as exc:
            raise ConsulError('%s /v1/%s: cannot reach Consul at %s: %s' % (method, path, self.url, _one_line(exc)))
        if not raw:
            return status, None
        try:
            return status, json.loads(to_text(raw))
        except ValueError:
            raise ConsulError('%s /v1/%s: HTTP %d: not JSON: %s' % (method, path, status, _one_line(raw)[:200]))
