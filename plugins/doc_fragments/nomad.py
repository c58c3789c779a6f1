# -*- coding: utf-8 -*-
# Copyright (c) selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by the modules of the nomad action group.
    DOCUMENTATION = r"""
options:
  address:
    description:
      - URL of the Nomad HTTP API, for example V(https://nomad.example.test:4646).
      - Falls back to the E(NOMAD_ADDR) environment variable, then V(http://127.0.0.1:4646).
    type: str
    aliases: [url]
  token:
    description:
      - ACL token sent as C(X-Nomad-Token). Falls back to E(NOMAD_TOKEN).
    type: str
  region:
    description:
      - Region to target. Falls back to E(NOMAD_REGION); the server's own region when unset.
    type: str
  namespace:
    description:
      - Namespace of the job. Falls back to E(NOMAD_NAMESPACE), then V(default).
    type: str
  ca_cert:
    description:
      - CA bundle to verify the server's certificate with. Falls back to E(NOMAD_CACERT).
    type: path
  client_cert:
    description:
      - Client certificate for mutual TLS. Falls back to E(NOMAD_CLIENT_CERT).
    type: path
  client_key:
    description:
      - Private key of O(client_cert). Falls back to E(NOMAD_CLIENT_KEY).
    type: path
  validate_certs:
    description:
      - Verify the server's TLS certificate. Set E(NOMAD_SKIP_VERIFY) to skip it from the environment.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each HTTP request.
    type: int
    default: 15
requirements:
  - python-nomad >= 2.0
notes:
  - Set the connection once for a play with C(module_defaults) and the group C(group/selfhost.homelab.nomad).
"""
