#!/usr/bin/python
# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: vault_acl
short_description: Keep Vault ACL policies and JWT auth roles as given, in one call
version_added: 0.1.0
author:
  - selfhost.homelab contributors (@selfhost)
description:
  - Manages a list of ACL policies (C(sys/policies/acl/<name>)) and a list of JWT auth roles
    (C(auth/<mount>/role/<name>)) in one module run, so that an idempotent run costs one read per
    object and no write.
  - Reads every object first, then writes only those that differ, in the order given.
  - A policy differs when it is absent or its text is not exactly the text Vault returns.
  - A role differs when it is absent or any key given in its C(role) differs from the value Vault
    returns, compared the way Vault stores it - durations in seconds (C(30m) equals C(1800)), a
    comma-separated string equals the list it names, lists as lists, dictionaries as dictionaries.
    Keys not given are not compared and are left as they are.
  - Nothing is deleted. Policies and roles not listed are left alone, and so are the keys of a
    role that are not given.
  - Bad input (a missing name, policy or role, a role that is not a dictionary, a duplicate name, a
    duration Vault would refuse) fails before any request, naming the field and its index.
extends_documentation_fragment:
  - selfhost.homelab.vault
attributes:
  check_mode:
    support: full
    description: Reads every object and reports what would change; writes nothing.
  diff_mode:
    support: full
    description:
      - One before/after per changed object, headed by its API path. Policies show their text;
        roles show the compared keys as Vault stores them.
  idempotent:
    support: full
    description: Objects that match are not written; an unchanged run sends only reads.
  action_group:
    support: full
    membership:
      - selfhost.homelab.vault
    description: Takes its connection and auth options from C(module_defaults) for C(group/selfhost.homelab.vault).
options:
  policies:
    description:
      - ACL policies, each a dictionary with the keys C(name) (required; Vault lower-cases it)
        and C(policy) (required; the policy text, HCL or JSON).
      - The C(root) policy cannot be changed.
    type: list
    elements: dict
    default: []
  jwt_roles:
    description:
      - JWT auth roles, each a dictionary with the keys C(name) (required), C(role) (required; the
        role's fields as for C(POST auth/<mount>/role/<name>), for example C(bound_claims),
        C(token_policies), C(token_period)) and C(mount) (the path of the JWT auth method, default C(jwt)).
      - Duration fields (C(token_period), C(token_ttl), C(token_max_ttl), C(token_explicit_max_ttl),
        C(ttl), C(max_ttl), C(period), C(expiration_leeway), C(not_before_leeway), C(clock_skew_leeway))
        may be given as seconds or as strings like C(90s), C(30m), C(1h30m), C(2d).
      - The deprecated C(ttl), C(max_ttl), C(period), C(policies), C(bound_cidrs) and C(num_uses) are
        compared with their C(token_) successors when Vault does not return them.
      - A given key that Vault never returns counts as differing on every run.
    type: list
    elements: dict
    default: []
  state:
    description:
      - V(present) writes every listed object that differs. Nothing is ever deleted.
    type: str
    choices: [present]
    default: present
notes:
  - Requests per run - one read per listed object, plus one write per object that differs.
    Logging in with O(auth_method=approle) or O(auth_method=jwt) adds one request.
  - If Vault refuses a write (a policy that does not parse, a role field it does not know), the
    module fails with Vault's message and names the objects already written before it.
seealso:
  - module: selfhost.homelab.vault_kv
  - name: Vault ACL policies API
    description: The API the policies are written through.
    link: https://developer.hashicorp.com/vault/api-docs/system/policies
  - name: Vault JWT/OIDC auth method API
    description: The API the roles are written through.
    link: https://developer.hashicorp.com/vault/api-docs/auth/jwt
'''

EXAMPLES = r'''
- name: Let the traefik job read its secret through Nomad's workload identity
  selfhost.homelab.vault_acl:
    url: https://vault.service.consul:8200
    token: "{{ homelab_bootstrap.vault.root_token }}"
    policies:
      - name: traefik
        policy: |
          path "kv/data/traefik" {
            capabilities = ["read"]
          }
    jwt_roles:
      - name: traefik
        mount: jwt-nomad
        role:
          role_type: jwt
          bound_audiences: [vault.io]
          user_claim: /nomad_job_id
          user_claim_json_pointer: true
          bound_claims: {nomad_job_id: traefik}
          token_type: service
          token_policies: [traefik]
          token_period: 30m

- name: Set the connection once for every Vault module of the play
  module_defaults:
    group/selfhost.homelab.vault:
      url: "{{ vault_addr }}"
      token: "{{ vault_token }}"
  block:
    - name: Report which policies and roles differ, changing nothing
      selfhost.homelab.vault_acl:
        policies: "{{ job_policies }}"  # [{name: grafana, policy: "path ..."}, ...]
        jwt_roles: "{{ job_roles }}"  # [{name: grafana, mount: jwt-nomad, role: {...}}, ...]
      check_mode: true
      diff: true
      register: acl_plan

    - name: Show the roles that differ and the keys that do
      ansible.builtin.debug:
        msg: "{{ acl_plan.jwt_roles | selectattr('changed') | items2dict('name', 'differences') }}"
'''

RETURN = r'''
policies:
  description: One entry per listed policy, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The policy's name.
      type: str
    changed:
      description: Whether the policy was (or in check mode would be) written.
      type: bool
    created:
      description: Whether the policy did not exist before.
      type: bool
  sample: [{"name": "traefik", "changed": false, "created": false}]
jwt_roles:
  description: One entry per listed role, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The role's name.
      type: str
    mount:
      description: The JWT auth method's path.
      type: str
    changed:
      description: Whether the role was (or in check mode would be) written.
      type: bool
    created:
      description: Whether the role did not exist before.
      type: bool
    differences:
      description: The given keys that differed from Vault's values (all given keys for a new role).
      type: list
      elements: str
  sample: [{"name": "traefik", "mount": "jwt-nomad", "changed": true, "created": false,
            "differences": ["token_period"]}]
requests:
  description: The number of HTTP requests this run sent to Vault (reads, writes and a login).
  returned: success
  type: int
  sample: 4
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.selfhost.homelab.plugins.module_utils._vault import (
    HVAC_IMPORT_ERROR,
    VaultAuth,
    VaultClient,
    VaultError,
    vault_argument_spec,
)
from ansible_collections.selfhost.homelab.plugins.module_utils._vault_acl import ACL, validate


def main():
    argument_spec = vault_argument_spec(
        policies=dict(type='list', elements='dict', default=[]),
        jwt_roles=dict(type='list', elements='dict', default=[]),
        state=dict(type='str', default='present', choices=['present']),
    )
    module = AnsibleModule(argument_spec=argument_spec, required_if=VaultAuth.REQUIRED_IF,
                           supports_check_mode=True)
    if HVAC_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib('hvac'), exception=HVAC_IMPORT_ERROR)
    try:
        policies, roles = validate(module.params)
        client = VaultClient(module.params)
        client.login()
        result = ACL(client, module.check_mode).run(policies, roles)
    except VaultError as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
