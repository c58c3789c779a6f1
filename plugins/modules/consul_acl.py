#!/usr/bin/python
# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: consul_acl
short_description: Keep Consul ACL policies and tokens as given, in one call
version_added: 0.1.0
author:
  - selfhost.homelab contributors (@selfhost)
description:
  - Manages a list of ACL policies and a list of ACL tokens with given SecretIDs in one module run,
    so that an idempotent run costs one request for every policy and one for every token together.
  - Reads everything first, then writes only what differs, policies before tokens, in the order given.
  - A policy differs when it is absent, its rules are not exactly the text Consul holds, or a given
    O(policies[].description) differs.
  - A token is found by its SecretID. A token that does not exist is created with that SecretID. An
    existing token differs when it lacks one of the listed policies (they are added; policies it has
    beyond them are kept) or a given O(tokens[].description) differs.
  - Nothing is deleted. Policies and tokens not listed are left alone.
  - Bad input (a missing name, rules or SecretID, a SecretID that is not a UUID, a policy name Consul
    would refuse, a duplicate) fails before any request, naming the field and its index. A token that
    names a policy neither listed nor in Consul fails after the reads, before any write.
extends_documentation_fragment:
  - selfhost.homelab.consul
attributes:
  check_mode:
    support: full
    description: Reads everything and reports what would change; writes nothing.
  diff_mode:
    support: full
    description:
      - One before/after per changed object, headed by its API path. Policies show their description
        and rules; tokens their accessor, description and policy names, never the SecretID.
  idempotent:
    support: full
    description: Objects that match are not written; an unchanged run sends only reads.
  action_group:
    support: full
    membership:
      - selfhost.homelab.consul
    description: Takes its connection options from C(module_defaults) for C(group/selfhost.homelab.consul).
options:
  policies:
    description:
      - ACL policies. Each needs C(name) and C(rules).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The policy's name (required), 1 to 128 letters, digits, C(-) or C(_).
        type: str
      rules:
        description:
          - The policy's rules (required), HCL or JSON, compared as text.
        type: str
      description:
        description:
          - The policy's description. When not given, a new policy gets none and an existing one keeps its own.
        type: str
  tokens:
    description:
      - ACL tokens. Each needs C(name), C(secret_id) and C(policies).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - A name for the token in the results and the diff (required; Consul tokens have no name).
          - A new token without O(tokens[].description) is described by this name.
        type: str
      secret_id:
        description:
          - The token's SecretID (required), a UUID. It identifies the token and is never shown.
        type: str
      policies:
        description:
          - Names of the policies the token must have (required; may be empty). Each must be listed in
            O(policies) or exist in Consul.
        type: list
        elements: str
      description:
        description:
          - The token's description. When not given, an existing token keeps its own.
        type: str
  state:
    description:
      - V(present) writes every listed object that differs. Nothing is ever deleted.
    type: str
    choices: [present]
    default: present
notes:
  - Requests per run - one list of the policies (C(GET /v1/acl/policies)) whose content hashes tell
    which rules already match; one read for each policy whose hash does not; one list of the tokens
    (C(GET /v1/acl/tokens)), which carries the SecretIDs on Consul 1.9 and later; on an older Consul,
    one C(GET /v1/acl/token/self) per token instead; plus one write per object that differs.
  - The O(token) needs C(acl = "write") (a management token), else Consul hides the SecretIDs and the
    module falls back to one read per token, and cannot write.
  - If Consul refuses a write (rules that do not parse), the module fails with Consul's message and
    names the objects already written before it.
seealso:
  - module: selfhost.homelab.vault_acl
  - name: Consul ACL policies API
    description: The API the policies are read and written through.
    link: https://developer.hashicorp.com/consul/api-docs/acl/policies
  - name: Consul ACL tokens API
    description: The API the tokens are read and written through.
    link: https://developer.hashicorp.com/consul/api-docs/acl/tokens
'''

EXAMPLES = r'''
- name: Give the nomad agents a policy and a token with the SecretID kept in the bootstrap file
  selfhost.homelab.consul_acl:
    url: http://127.0.0.1:8500
    token: "{{ homelab_bootstrap.consul.management_token }}"
    policies:
      - name: nomad
        description: "selfhost.homelab: nomad"
        rules: |
          agent_prefix "" {
            policy = "read"
          }
          service_prefix "" {
            policy = "write"
          }
    tokens:
      - name: nomad
        secret_id: "{{ homelab_bootstrap.consul.tokens.nomad }}"
        policies: [nomad]

- name: Set the connection once for every Consul module of the play
  module_defaults:
    group/selfhost.homelab.consul:
      token: "{{ consul_management_token }}"
  block:
    - name: Report which policies and tokens differ, changing nothing
      selfhost.homelab.consul_acl:
        policies: "{{ job_policies }}"  # [{name: grafana, rules: "service ..."}, ...]
        tokens: "{{ job_tokens }}"  # [{name: grafana, secret_id: ..., policies: [grafana]}, ...]
      check_mode: true
      diff: true
      register: acl_plan

    - name: Show the tokens that would be created
      ansible.builtin.debug:
        msg: "{{ acl_plan.created_tokens }}"
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
    differences:
      description: What differed, C(rules) and/or C(description).
      type: list
      elements: str
  sample: [{"name": "nomad", "changed": true, "created": false, "differences": ["rules"]}]
tokens:
  description: One entry per listed token, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The token's name as given.
      type: str
    accessor_id:
      description: The token's AccessorID (null for a token only created in check mode).
      type: str
    changed:
      description: Whether the token was (or in check mode would be) written.
      type: bool
    created:
      description: Whether the token did not exist before.
      type: bool
    differences:
      description: What differed, among C(secret_id) (the token was absent), C(policies) and C(description).
      type: list
      elements: str
  sample: [{"name": "nomad", "accessor_id": "6a1253d2-1785-24fd-91c2-f8e78c745511", "changed": true,
            "created": true, "differences": ["policies", "secret_id"]}]
created_tokens:
  description: The names of the tokens that did not exist and were (or in check mode would be) created.
  returned: success
  type: list
  elements: str
  sample: ["host-service-dnscrypt-proxy"]
requests:
  description: The number of HTTP requests this run sent to Consul (reads and writes).
  returned: success
  type: int
  sample: 2
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.homelab.plugins.module_utils._consul import (
    ConsulClient,
    ConsulError,
    consul_argument_spec,
)
from ansible_collections.selfhost.homelab.plugins.module_utils._consul_acl import ACL, validate


def main():
    argument_spec = consul_argument_spec(
        policies=dict(type='list', elements='dict', default=[], options=dict(
            name=dict(type='str'),
            rules=dict(type='str'),
            description=dict(type='str'),
        )),
        # no_log only on the SecretIDs inside: the names and policies stay visible in the results.
        tokens=dict(type='list', elements='dict', default=[], no_log=False, options=dict(
            name=dict(type='str'),
            secret_id=dict(type='str', no_log=True),
            policies=dict(type='list', elements='str'),
            description=dict(type='str'),
        )),
        state=dict(type='str', default='present', choices=['present']),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        policies, tokens = validate(module.params)
        client = ConsulClient(module.params)
        result = ACL(client, module.check_mode).run(policies, tokens)
    except ConsulError as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
