#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight
short_description: Check the whole home-server inventory before any host is touched
version_added: "0.1.0"
description:
  - Runs on the controller only (an action plugin) and never connects to a host. It reads every host's variables
    through C(hostvars), templated in that host's context, with ansible-vault values decrypted.
  - "Checks the inventory as a whole and reports every problem at once, each line naming the host (or C(groups))
    and the variable: C(homelab_domain) set on every host, a valid DNS name and the same everywhere;
    C(homelab_ingress_addresses) IP addresses (and set on each C(ingress) host); C(homelab_lan_cidrs) networks;
    data and scratch roots absolute; when C(homelab_zfs_pool) is set, an entry of C(zfs_pools) naming it; every pool
    names its disks (a mirror at least two, no disk twice; kernel names such as C(/dev/sda) are a warning)."
  - "Groups: every host of C(consul_servers), C(vault_servers), C(nomad_servers), C(nomad_clients) and C(ingress) is
    in C(homelab); server groups have an odd size; Nomad servers come with Consul and Vault servers, Nomad clients
    and an ingress host that is a Nomad client."
  - "When C(nomad_servers) is not empty (platform jobs and apps run), with the variables of the first Nomad server:
    every enabled app's subdomain is a DNS label, unique among the enabled apps and Traefik's dashboard, and not the
    Consul service name of another part of the stack; C(backup_repositories) is not empty and valid; and
    C(homelab_secrets) (of the first Vault server) holds every field each job reads (the enabled apps, Traefik's DNS
    provider credentials and dashboard users, Grafana's admin password, Alertmanager's SMTP password when set, each
    backup set's restic password and repository credentials), none empty and none still C(CHANGE_ME)."
  - C(homelab_bootstrap_file) and C(homelab_bootstrap_password) are set on the HashiCorp servers.
  - Use it once per run, as the first play of C(selfhost.homelab.site) does (C(run_once=true)).
author:
  - selfhost.homelab contributors (@selfhost)
attributes:
  check_mode:
    support: full
    description: Reads the inventory only.
  diff_mode:
    support: none
    description: Reads the inventory only.
  idempotent:
    support: full
    description: Never changes anything.
options:
  fail_on_warnings:
    description:
      - Treat warnings (kernel disk names, more than seven servers, a HashiCorp layer without Nomad servers, an
        ingress address outside C(homelab_lan_cidrs), a key of C(homelab_secrets) no job reads) as problems.
    type: bool
    default: false
notes:
  - It knows the collection's own roles. An app role of your own (docs/apps.md) gets its checks from its role and
    the C(app_job) filter when it runs.
seealso:
  - module: selfhost.homelab.vault_kv
"""

EXAMPLES = r"""
- name: Preflight - check the inventory as a whole
  hosts: all
  gather_facts: false
  tasks:
    - name: Check the inventory before any host is touched
      selfhost.homelab.preflight:
      run_once: true

# ansible-playbook -i inventories/my-home/hosts.yml selfhost.homelab.preflight
"""

RETURN = r"""
problems:
  description: "One line per problem, C(<host or groups>: <variable>: <what is wrong>). Empty when the check passes."
  returned: always
  type: list
  elements: str
  sample:
    - "box: homelab_domain: not set: every service is <subdomain>.<homelab_domain>"
    - "box: plex_subdomain: 'photos' is already the subdomain of PhotoPrism (photoprism_subdomain); ..."
    - "groups: consul_servers: 2 hosts (a, b): servers keep a quorum only in odd numbers (1, 3 or 5); ..."
checked_hosts:
  description: The hosts whose variables were read (group C(homelab) and the stack's groups).
  returned: always
  type: list
  elements: str
  sample: [box]
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec={"fail_on_warnings": {"type": "bool", "default": False}},
                           supports_check_mode=True)
    module.fail_json(msg="selfhost.homelab.preflight runs on the controller as an action plugin; "
                         "call it as a task, not as a module on a host")


if __name__ == "__main__":
    main()
