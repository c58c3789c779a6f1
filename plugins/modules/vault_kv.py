#!/usr/bin/python
# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: vault_kv
short_description: Read, write and delete secrets in Vault's KV secrets engine (version 1 and 2)
version_added: 0.1.0
author:
  - selfhost.homelab contributors (@selfhost)
description:
  - Manages one secret in a Vault KV mount, version 1 or 2 through the same options, or with
    O(secrets) many secrets of one mount in one module run.
    The engine version is detected from the mount (C(sys/internal/ui/mounts), as the
    Vault CLI does) or given with O(engine_version).
  - Reads before it writes, always. An unchanged secret writes nothing and creates no
    new KV v2 version; RV(ignore:changed) is honest in every state and in check mode.
  - With O(merge=true) only the given fields are set (a field given as C(null) is removed)
    and the others are kept; otherwise the secret becomes exactly O(data).
  - KV v2 writes always carry a check-and-set version (O(cas), or the version just read),
    so a secret changed by someone else between the read and the write is never overwritten.
  - KV v2 metadata (C(max_versions), C(cas_required), C(delete_version_after),
    C(custom_metadata)) is managed with O(metadata).
  - Deleting is soft by default (KV v2 keeps the version and can undelete it). Permanent
    removal needs an option that names it, O(destroy) or O(delete_metadata).
  - Secret values are never logged and never shown in the diff unless O(diff_show_values=true).
  - Every failure (unreachable server, bad token, sealed Vault, a non-KV mount, a CAS
    mismatch, bad input) is a one-line message, and nothing was changed (with O(secrets), unless
    Vault refuses a write half-way through the list; see below).
  - With O(secrets) every item is treated exactly as one secret given with O(path) and O(data)
    (read, compare, write only if it differs; check-and-set on KV v2), for O(state=present) only.
    All items are validated before the first request, and all are read before the first write,
    so bad input, a check-and-set mismatch or a merge that leaves no field fails before anything
    is written. A write that Vault refuses fails the run and names the secrets already written.
extends_documentation_fragment:
  - selfhost.homelab.vault
attributes:
  check_mode:
    support: full
    description: Reads the secret and reports what would change; writes nothing.
  diff_mode:
    support: full
    description:
      - Shows the fields before and after, values redacted unless O(diff_show_values=true).
      - With O(secrets), one before/after per changed secret, headed by its API path.
  idempotent:
    support: full
    description: An unchanged secret is not written and creates no new version.
  action_group:
    support: full
    membership:
      - selfhost.homelab.vault
    description: Takes its connection and auth options from C(module_defaults) for C(group/selfhost.homelab.vault).
options:
  mount:
    description:
      - Path of the KV secrets engine mount, without C(data/).
    type: str
    default: kv
    aliases: [engine_mount_point]
  path:
    description:
      - Path of the secret inside the mount (C(traefik), C(apps/photoprism)).
      - Not the API path; C(data/) and C(metadata/) are added for KV v2.
      - Exactly one of O(path) and O(secrets) is required.
    type: str
  secrets:
    description:
      - Many secrets of the mount, written in one module run; each item is handled as one secret
        given with O(path), O(data), O(merge) and O(cas) would be. Only with O(state=present).
      - Mutually exclusive with O(path), O(data), O(cas) and O(metadata). O(metadata), O(versions),
        O(destroy), O(delete_metadata) and O(version) have no per-item form; use a task for that
        one secret.
      - Items are validated before the first request; a bad item fails naming its index and field
        (C(secrets[3].path must not be empty)). Each path may be given once.
      - An empty list changes nothing (and sends only the mount lookup of O(engine_version=auto)).
      - The values in C(data) are C(no_log); the paths are not, and appear in the results.
    type: list
    elements: dict
    suboptions:
      path:
        description:
          - Path of the secret inside the mount, as O(path). Required in every item.
          - Not marked required here so that the module, not Ansible, reports a missing one with its index.
        type: str
      data:
        description:
          - The secret's fields, as O(data). Required in every item.
        type: dict
      merge:
        description:
          - As O(merge), for this secret. Default the value of the top-level O(merge).
        type: bool
      cas:
        description:
          - As O(cas), for this secret (KV v2 only).
        type: int
  engine_version:
    description:
      - KV version of the mount. V(auto) looks it up (one more request per run);
        giving V(1) or V(2) saves it, and lets a token without access to the lookup work.
    type: str
    choices: [auto, '1', '2']
    default: auto
  state:
    description:
      - V(present) writes O(data) (or each item of O(secrets)) if it differs from what is stored.
      - V(absent) deletes the secret (see O(versions), O(destroy), O(delete_metadata)).
      - V(read) returns the secret in RV(data) and changes nothing.
    type: str
    choices: [present, absent, read]
    default: present
  data:
    description:
      - The secret's fields, for O(state=present).
    type: dict
  merge:
    description:
      - Patch the stored secret with O(data) instead of replacing it. A field whose value is
        C(null) is removed. Without it, fields not in O(data) are removed.
      - With O(secrets), the default for items that do not set C(merge).
    type: bool
    default: false
  cas:
    description:
      - KV v2 check-and-set. The write happens only if the secret's current version is this
        number; V(0) writes only if the secret does not exist yet.
      - Without it the module uses the version it has just read.
      - A mismatch fails before anything is written; an unchanged secret is not written,
        so it does not fail.
    type: int
  metadata:
    description:
      - KV v2 metadata of the secret. Only the given keys are managed.
    type: dict
    suboptions:
      max_versions:
        description: Versions to keep; V(0) means the mount's setting (Vault's default is 10).
        type: int
      cas_required:
        description: Refuse writes without a check-and-set version.
        type: bool
      delete_version_after:
        description: Soft-delete versions this long after they are written (C(30d), C(12h), C(0s) for never).
        type: str
      custom_metadata:
        description: String key/value pairs stored with the secret (at most 64 keys).
        type: dict
  versions:
    description:
      - KV v2 versions to delete or destroy with O(state=absent). Default the current version.
    type: list
    elements: int
  destroy:
    description:
      - With O(state=absent) on KV v2, destroy the versions permanently (their data cannot be
        undeleted) instead of soft-deleting them.
    type: bool
    default: false
  delete_metadata:
    description:
      - With O(state=absent) on KV v2, delete the metadata and every version of the secret, permanently.
    type: bool
    default: false
  version:
    description:
      - With O(state=read) on KV v2, the version to read. Default the current one.
    type: int
  diff_show_values:
    description:
      - Show the secret's values in the diff instead of C(<redacted>).
      - Values that come from O(data) are still masked by Ansible because O(data) is C(no_log).
    type: bool
    default: false
notes:
  - Requests per run with O(engine_version) given, for an unchanged secret - one read. A changed
    secret costs one read and one write; O(metadata) beyond C(custom_metadata) adds a metadata read.
  - With O(secrets) - one read per item plus one write per item that differs (none in check mode),
    so an unchanged list of N secrets costs N reads. O(engine_version=auto) adds one request per run,
    and logging in with O(auth_method=approle) or O(auth_method=jwt) one more. RV(requests) counts them.
  - Results of O(state=read) contain the secret; set C(no_log) on such tasks.
seealso:
  - name: Vault KV v2 API
    description: The API this module drives.
    link: https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2
  - name: Vault KV v1 API
    description: The API this module drives for version 1 mounts.
    link: https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1
'''

EXAMPLES = r'''
- name: Store Traefik's DigitalOcean token (one read, and a write only when it changed)
  selfhost.homelab.vault_kv:
    url: https://vault.service.consul:8200
    token: "{{ homelab_bootstrap.vault_root_token }}"
    mount: kv
    engine_version: "2"
    path: traefik
    data:
      do_auth_token: "{{ homelab_secrets.traefik.do_auth_token }}"

- name: Set connection options once for every Vault module of the play
  module_defaults:
    group/selfhost.homelab.vault:
      url: "{{ vault_addr }}"
      token: "{{ vault_token }}"
  block:
    - name: Add one field to a job's secret, keeping the others
      selfhost.homelab.vault_kv:
        path: nextcloud
        merge: true
        data:
          consul_token: "{{ nextcloud_consul_token }}"

    - name: Keep five versions and label the secret
      selfhost.homelab.vault_kv:
        path: nextcloud
        data: "{{ homelab_secrets.nextcloud }}"
        metadata:
          max_versions: 5
          custom_metadata:
            owner: nextcloud

- name: Create a secret only if it does not exist yet (check-and-set 0)
  selfhost.homelab.vault_kv:
    path: grafana
    cas: 0
    data:
      admin_password: "{{ lookup('ansible.builtin.password', '/dev/null length=32') }}"

- name: Write every job's secret in one module run (one read each, a write only for those that differ)
  selfhost.homelab.vault_kv:
    mount: kv
    engine_version: "2"
    secrets:
      - path: traefik
        data: "{{ homelab_secrets.traefik }}"
      - path: nextcloud
        merge: true
        data:
          consul_token: "{{ nextcloud_consul_token }}"
      - path: grafana
        cas: 0
        data:
          admin_password: "{{ grafana_admin_password }}"
  no_log: true

- name: Read a secret (no_log - the result holds its values)
  selfhost.homelab.vault_kv:
    path: grafana
    state: read
  register: grafana_secret
  no_log: true

- name: Log in with AppRole and write to a KV version 1 mount
  selfhost.homelab.vault_kv:
    url: https://vault.example.org:8200
    auth_method: approle
    role_id: "{{ approle_role_id }}"
    secret_id: "{{ approle_secret_id }}"
    mount: legacy
    path: app/config
    data:
      api_key: "{{ api_key }}"

- name: Soft-delete the current version (it can be undeleted)
  selfhost.homelab.vault_kv:
    path: oldapp
    state: absent

- name: Destroy versions 1 and 2 permanently
  selfhost.homelab.vault_kv:
    path: oldapp
    state: absent
    versions: [1, 2]
    destroy: true

- name: Remove the secret, all its versions and its metadata
  selfhost.homelab.vault_kv:
    path: oldapp
    state: absent
    delete_metadata: true
'''

RETURN = r'''
engine_version:
  description: KV version of the mount (detected or given).
  returned: success
  type: int
  sample: 2
mount:
  description: The mount used.
  returned: success
  type: str
  sample: kv
path:
  description: The secret's path inside the mount.
  returned: success and path is given
  type: str
  sample: traefik
version:
  description:
    - KV v2 version of the secret after the run (in check mode, the version a write would create).
    - For O(state=read), the version read. V(null) on KV v1.
  returned: success and path is given
  type: int
  sample: 3
created:
  description: Whether the secret did not exist before (O(state=present)).
  returned: state is present and path is given
  type: bool
  sample: false
secrets:
  description: One entry per item of O(secrets), in the order given.
  returned: success and secrets is given
  type: list
  elements: dict
  contains:
    path:
      description: The secret's path inside the mount.
      type: str
      sample: traefik
    changed:
      description: Whether this secret was written (in check mode, would be).
      type: bool
      sample: true
    created:
      description: Whether the secret did not exist before.
      type: bool
      sample: false
    version:
      description:
        - KV v2 version of the secret after the run (in check mode, the version a write would create).
        - V(null) on KV v1.
      type: int
      sample: 4
  sample: [{"path": "traefik", "changed": false, "created": false, "version": 3},
           {"path": "grafana", "changed": true, "created": true, "version": 1}]
requests:
  description: The number of HTTP requests this run sent to Vault (mount lookup, reads, writes and a login).
  returned: success
  type: int
  sample: 12
exists:
  description: Whether the secret (or the requested version) exists and is not deleted (O(state=read)).
  returned: state is read
  type: bool
  sample: true
data:
  description: The secret's fields (O(state=read)); empty when it does not exist.
  returned: state is read
  type: dict
  sample: {"do_auth_token": "..."}
metadata:
  description: KV v2 metadata of the version read (O(state=read)).
  returned: state is read and the mount is KV v2
  type: dict
  sample: {"version": 3, "created_time": "2025-01-01T00:00:00.000000Z", "deletion_time": "", "destroyed": false}
versions:
  description: KV v2 versions deleted, destroyed or (with O(delete_metadata)) removed (O(state=absent)).
  returned: state is absent and the mount is KV v2
  type: list
  elements: int
  sample: [3]
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.selfhost.homelab.plugins.module_utils._vault import (
    HVAC_IMPORT_ERROR,
    VaultAuth,
    VaultClient,
    VaultError,
    vault_argument_spec,
)
from ansible_collections.selfhost.homelab.plugins.module_utils._vault_kv import KV, validate


def main():
    argument_spec = vault_argument_spec(
        mount=dict(type='str', default='kv', aliases=['engine_mount_point']),
        path=dict(type='str'),
        # The values are no_log (data); the paths are not, so results and errors can name them.
        secrets=dict(type='list', elements='dict', no_log=False, options=dict(
            # path and data are required; the module checks that itself, so the message names the item.
            path=dict(type='str'),
            data=dict(type='dict', no_log=True),
            merge=dict(type='bool'),
            cas=dict(type='int'),
        )),
        engine_version=dict(type='str', default='auto', choices=['auto', '1', '2']),
        state=dict(type='str', default='present', choices=['present', 'absent', 'read']),
        data=dict(type='dict', no_log=True),
        merge=dict(type='bool', default=False),
        cas=dict(type='int'),
        metadata=dict(type='dict', options=dict(
            max_versions=dict(type='int'),
            cas_required=dict(type='bool'),
            delete_version_after=dict(type='str'),
            custom_metadata=dict(type='dict'),
        )),
        versions=dict(type='list', elements='int'),
        destroy=dict(type='bool', default=False),
        delete_metadata=dict(type='bool', default=False),
        version=dict(type='int'),
        diff_show_values=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, required_if=VaultAuth.REQUIRED_IF,
                           required_one_of=[('path', 'secrets')],
                           mutually_exclusive=[('path', 'secrets'), ('data', 'secrets'), ('cas', 'secrets'),
                                               ('metadata', 'secrets')],
                           supports_check_mode=True)
    if HVAC_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib('hvac'), exception=HVAC_IMPORT_ERROR)
    try:
        validate(module.params)
        client = VaultClient(module.params)
        client.login()
        result = KV(client, module.params, module.check_mode).run()
    except VaultError as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
