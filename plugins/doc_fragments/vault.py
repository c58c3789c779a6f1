# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection and authentication options shared by the selfhost.homelab Vault modules."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r'''
options:
  url:
    description:
      - Address of the Vault server, for example C(https://vault.service.consul:8200).
      - Falls back to the E(VAULT_ADDR) environment variable.
      - Set it once for every Vault module of a play with
        C(module_defaults) for the C(group/selfhost.homelab.vault) action group.
    type: str
    required: true
  ca_cert:
    description:
      - CA certificate (PEM file) that signed the server's certificate.
      - Falls back to E(VAULT_CACERT).
    type: path
  validate_certs:
    description:
      - Verify the server's TLS certificate. Turn off only for a throwaway test server.
    type: bool
    default: true
  namespace:
    description:
      - Vault Enterprise namespace (sent as C(X-Vault-Namespace)). Falls back to E(VAULT_NAMESPACE).
    type: str
  timeout:
    description:
      - Seconds to wait for each HTTP answer.
    type: int
    default: 30
  auth_method:
    description:
      - How to log in.
      - V(token) uses O(token), else E(VAULT_TOKEN), else the file O(token_file).
      - V(approle) logs in with O(role_id) and O(secret_id).
      - V(jwt) logs in with a signed O(jwt) for the JWT auth role O(jwt_role)
        (for example a Nomad workload identity).
      - A login creates a token in Vault even in check mode (reading needs one).
    type: str
    choices: [token, approle, jwt]
    default: token
  auth_mount_point:
    description:
      - Where the auth method is mounted; defaults to the method's name (C(approle), C(jwt)).
    type: str
  token:
    description:
      - Vault token for O(auth_method=token). Falls back to E(VAULT_TOKEN).
    type: str
  token_file:
    description:
      - File holding the token when neither O(token) nor E(VAULT_TOKEN) is set
        (what C(vault login) writes).
    type: path
    default: ~/.vault-token
  role_id:
    description:
      - AppRole role ID, for O(auth_method=approle).
    type: str
  secret_id:
    description:
      - AppRole secret ID, for O(auth_method=approle).
    type: str
  jwt:
    description:
      - The signed JSON Web Token, for O(auth_method=jwt).
    type: str
  jwt_role:
    description:
      - The JWT auth role to log in to, for O(auth_method=jwt).
    type: str
requirements:
  - hvac >= 1.0 (Python library)
'''
