# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by the selfhost.homelab Consul modules."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r'''
options:
  url:
    description:
      - Address of the Consul HTTP API, for example C(https://consul.service.consul:8501).
      - Falls back to the E(CONSUL_HTTP_ADDR) environment variable (C(host:port) alone means plain HTTP).
      - Set it once for every Consul module of a play with
        C(module_defaults) for the C(group/selfhost.homelab.consul) action group.
    type: str
    default: http://127.0.0.1:8500
  token:
    description:
      - The ACL token the requests are sent with (C(X-Consul-Token)); it needs C(acl = "write").
      - Falls back to E(CONSUL_HTTP_TOKEN).
    type: str
  ca_cert:
    description:
      - CA certificate (PEM file) that signed the server's certificate.
      - Falls back to E(CONSUL_CACERT).
    type: path
  validate_certs:
    description:
      - Verify the server's TLS certificate. Turn off only for a throwaway test server.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each HTTP answer.
    type: int
    default: 10
'''
