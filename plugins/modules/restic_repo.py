#!/usr/bin/python
# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: restic_repo
short_description: Manage a restic repository and its snapshots
version_added: 0.1.0
author:
  - selfhost.homelab contributors (@selfhost)
description:
  - Works on one restic repository, selected with O(repository), and does one O(action) on it per task.
  - O(action=init) makes sure the repository exists and initialises it only when restic says there is
    no repository. restic 0.17 and later say so with exit code 10 (11 for "locked", 12 for "wrong password");
    older restic (Debian 12 ships 0.14) exits 1 for all three, and the module then recognises each case
    only by the exact line restic prints for it. Anything it does not recognise fails the task.
    A wrong password fails the task and never leads to an init; the probe (C(restic cat config --no-lock))
    writes nothing to the repository.
  - O(action=backup) backs up O(paths). The task reports C(changed) only when a snapshot was written because
    something changed. restic 0.17 and later are run with C(--skip-if-unchanged); on older restic a
    C(backup --dry-run --json) runs first and the real backup runs only when the dry run found new or changed
    files or directories. Check mode always uses the dry run.
  - O(action=forget) applies the O(retention) policy with C(restic forget) and returns the removed and kept
    snapshots; O(prune=true) also runs C(restic prune) when something was removed. In check mode it runs
    C(forget --dry-run) (without taking a lock) and returns what would be removed.
  - O(action=check) runs C(restic check), optionally with O(read_data_subset), and returns the outcome as data.
  - O(action=snapshots) lists the snapshots (filtered by O(host), O(tags), O(paths)) as data.
  - O(action=restore) restores O(snapshot) (default C(latest)) into O(target).
  - O(action=verify) is a restore drill. It restores O(snapshot) into a private temporary directory, compares
    every file's SHA-256 (and every symlink's target) with O(paths) as they are now, removes the temporary
    directory and fails if anything differs.
  - O(action=unlock) removes stale locks (all locks with O(remove_all_locks=true)). Nothing else in this module
    ever unlocks a repository.
  - Secrets (O(password), O(aws_secret_access_key), O(b2_account_key), ...) reach restic only through its
    environment. They never appear in the command line, are never written to disk by the module, and are
    masked in the output. A password in a C(rest:) repository URL is masked too.
  - "Style: this module has an O(action) and no C(state) option. A restic repository is never deleted by this module,
    and most of what it does (backup, forget, check, restore) are operations, not states. Each action is
    idempotent where that makes sense: C(init), C(backup), C(forget) and C(unlock) report C(changed) only when
    they changed the repository."
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the repository.
    support: full
    details:
      - C(init) only probes; C(backup) runs C(backup --dry-run); C(forget) runs C(forget --dry-run --no-lock);
        C(restore) and C(unlock) report what they would do; C(check), C(snapshots) and C(verify) only read the
        repository, so they run as usual (C(verify) writes only to its own temporary directory).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - C(init), C(backup), C(forget), C(unlock) and C(restore) return before/after states; no secret is part of them.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second run reports no change.
    support: partial
    details:
      - C(init), C(backup), C(forget) and C(unlock) are idempotent. C(restore) always reports C(changed).
options:
  action:
    description:
      - What to do with the repository. See the description for each action.
    type: str
    choices: [init, backup, forget, check, snapshots, restore, verify, unlock]
    default: init
  repository:
    description:
      - The repository location, as restic's C(-r) takes it.
      - "Local path: C(/srv/backup/restic)."
      - "SFTP: C(sftp:user@host:/srv/restic); the SSH command can be changed with O(options)
        (C(sftp.command))."
      - "REST server: C(rest:https://user:password@host:8000/repo); the password in the URL is masked in output."
      - "S3 and S3-compatible (including Backblaze B2's S3 API): C(s3:https://s3.eu-central-003.backblazeb2.com/bucket/path)."
      - "Backblaze B2 native API: C(b2:bucket:path), credentials in O(b2_account_id) and O(b2_account_key)."
    type: str
    required: true
  password:
    description:
      - The repository password. Passed to restic as E(RESTIC_PASSWORD) in its environment only.
      - One of O(password), O(password_file) and O(password_command) is required, unless the task's
        environment already sets E(RESTIC_PASSWORD), E(RESTIC_PASSWORD_FILE) or E(RESTIC_PASSWORD_COMMAND).
    type: str
  password_file:
    description:
      - A file on the managed host that holds the repository password (E(RESTIC_PASSWORD_FILE)).
    type: path
  password_command:
    description:
      - A command whose output is the repository password (E(RESTIC_PASSWORD_COMMAND)), for example
        C(pass show backup/restic).
    type: str
  binary:
    description:
      - The restic executable, a path or a name looked up in E(PATH).
    type: str
    default: restic
  options:
    description:
      - "Extended options, each given to restic as C(-o key=value). For example C({b2.connections: 20}),
        C({s3.region: eu-central-003}) or C({sftp.command: 'ssh -p 2222 backup@nas -s sftp'})."
    type: dict
    default: {}
  cache_dir:
    description:
      - restic's cache directory (C(--cache-dir)).
    type: path
  no_cache:
    description:
      - Run restic without a local cache (C(--no-cache)).
    type: bool
    default: false
  aws_access_key_id:
    description:
      - S3 access key id (E(AWS_ACCESS_KEY_ID)); also the key id of a Backblaze B2 application key used
        through B2's S3 API. When not set, restic reads E(AWS_ACCESS_KEY_ID) from the task's environment.
    type: str
  aws_secret_access_key:
    description:
      - S3 secret access key (E(AWS_SECRET_ACCESS_KEY)).
    type: str
  aws_session_token:
    description:
      - S3 session token (E(AWS_SESSION_TOKEN)).
    type: str
  aws_default_region:
    description:
      - S3 region (E(AWS_DEFAULT_REGION)).
    type: str
  b2_account_id:
    description:
      - Backblaze B2 account or application key id for the native C(b2:) backend (E(B2_ACCOUNT_ID)).
    type: str
  b2_account_key:
    description:
      - Backblaze B2 application key for the native C(b2:) backend (E(B2_ACCOUNT_KEY)).
    type: str
  paths:
    description:
      - For O(action=backup), the files and directories to back up (required).
      - For O(action=verify), the source to compare the restored snapshot with (required), and the
        snapshot filter for C(latest).
      - For O(action=forget), O(action=snapshots) and O(action=restore), only snapshots of exactly these
        paths are considered (C(--path)).
    type: list
    elements: path
  exclude:
    description:
      - Patterns to exclude from the backup (C(--exclude)).
    type: list
    elements: str
    default: []
  exclude_file:
    description:
      - Files with exclude patterns (C(--exclude-file)).
    type: list
    elements: path
    default: []
  one_file_system:
    description:
      - Do not cross file system boundaries during the backup (C(--one-file-system)).
    type: bool
    default: false
  tags:
    description:
      - For O(action=backup), tags for the new snapshot (C(--tag)).
      - For the other actions, only snapshots with these tags are considered.
    type: list
    elements: str
    default: []
  host:
    description:
      - For O(action=backup), the host name recorded in the snapshot (C(--host)); restic's default is the
        machine's host name.
      - For the other actions, only snapshots of this host are considered.
    type: str
  retention:
    description:
      - For O(action=forget), the retention policy. The same dict the P(selfhost.homelab.restic_retention#filter)
        filter takes.
      - Keys C(keep_last), C(keep_hourly), C(keep_daily), C(keep_weekly), C(keep_monthly), C(keep_yearly)
        (whole numbers of at least 1), C(keep_within) (a restic duration such as C(30d) or C(1y6m)) and
        C(keep_tags) (a list of tags). At least one is required.
    type: dict
  group_by:
    description:
      - For O(action=forget), how snapshots are grouped before the policy applies (C(--group-by)), for example
        C(host,paths). restic's default is C(host,paths).
    type: str
  prune:
    description:
      - For O(action=forget), also run C(restic prune) when snapshots were removed.
    type: bool
    default: false
  read_data_subset:
    description:
      - For O(action=check), also read this part of the pack files (C(--read-data-subset)), such as C(1/7),
        C(10%) or C(500M).
    type: str
  snapshot:
    description:
      - For O(action=restore) and O(action=verify), the snapshot id, or C(latest).
    type: str
    default: latest
  target:
    description:
      - For O(action=restore), the directory to restore into (required). restic recreates the snapshot's
        absolute paths below it.
    type: path
  include:
    description:
      - For O(action=restore), restore only files that match these patterns (C(--include)).
    type: list
    elements: str
    default: []
  verify_dir:
    description:
      - For O(action=verify), where the temporary restore directory is made (default the system temp directory).
    type: path
  remove_all_locks:
    description:
      - For O(action=unlock), remove all locks, not only stale ones (C(--remove-all)). Only safe when no other
        restic process uses the repository.
    type: bool
    default: false
  unlock_stale:
    description:
      - Before any other action, remove stale locks with C(restic unlock) (locks of processes that are gone,
        or older than 30 minutes; never a live lock). Opt-in, for example after an interrupted backup left its
        lock behind and C(check) or C(forget) refuse to run. Not done in check mode, and not counted in C(changed).
    type: bool
    default: false
notes:
  - Tested against restic 0.14 (Debian 12) and 0.18 (Debian 13) on local, SFTP, REST server and S3 (moto)
    repositories. The native C(b2:) backend has no stand-in that runs offline; its command lines are covered
    by unit tests only. B2 through its S3 API is the same code path as any S3 server.
  - On restic older than 0.17 a backup runs restic twice (a dry run, then the backup when needed).
  - restic records every ancestor directory of an absolute backup path in the snapshot. A change to an
    ancestor's metadata (for example the mtime of C(/tmp) when something is created there) is a change,
    so such a backup writes a snapshot and reports C(changed). Back up paths whose parents are stable.
requirements:
  - restic 0.14 or later on the managed host
seealso:
  - name: restic scripting and exit codes
    description: Exit codes and JSON output the module relies on.
    link: https://restic.readthedocs.io/en/stable/075_scripting.html
"""

EXAMPLES = r"""
- name: Make sure the local repository exists
  selfhost.homelab.restic_repo:
    repository: /srv/backup/restic
    password_file: /etc/restic/password
    action: init

- name: Back up app data to a REST server (password from a command)
  selfhost.homelab.restic_repo:
    repository: "rest:https://backup:{{ rest_server_password }}@nas.home.example.org:8000/homelab"
    password_command: cat /run/secrets/restic
    action: backup
    paths: [/srv/apps, /etc]
    exclude: ["*.tmp", /srv/apps/*/cache]
    tags: [nightly]

- name: Back up over SFTP with a custom SSH command
  selfhost.homelab.restic_repo:
    repository: sftp:backup@nas:/srv/restic/homelab
    password: "{{ homelab_secrets.backup.restic_password }}"
    options:
      sftp.command: ssh -p 2222 -i /root/.ssh/backup backup@nas -s sftp
    action: backup
    paths: [/srv/apps]

- name: Back up to an S3-compatible server
  selfhost.homelab.restic_repo:
    repository: s3:https://minio.home.example.org/restic/homelab
    password: "{{ homelab_secrets.backup.restic_password }}"
    aws_access_key_id: "{{ homelab_secrets.backup.s3_key_id }}"
    aws_secret_access_key: "{{ homelab_secrets.backup.s3_secret }}"
    action: backup
    paths: [/srv/apps]

- name: Back up to Backblaze B2 through its S3 API
  selfhost.homelab.restic_repo:
    repository: s3:https://s3.eu-central-003.backblazeb2.com/my-bucket/homelab
    password: "{{ homelab_secrets.backup.restic_password }}"
    aws_access_key_id: "{{ homelab_secrets.backup.b2_key_id }}"
    aws_secret_access_key: "{{ homelab_secrets.backup.b2_key }}"
    action: backup
    paths: [/srv/apps]

- name: Back up to Backblaze B2 with restic's native b2 backend, 20 connections
  selfhost.homelab.restic_repo:
    repository: b2:my-bucket:homelab
    password: "{{ homelab_secrets.backup.restic_password }}"
    b2_account_id: "{{ homelab_secrets.backup.b2_key_id }}"
    b2_account_key: "{{ homelab_secrets.backup.b2_key }}"
    options:
      b2.connections: 20
    action: backup
    paths: [/srv/apps]

- name: Apply the retention policy and prune
  selfhost.homelab.restic_repo:
    repository: /srv/backup/restic
    password_file: /etc/restic/password
    action: forget
    retention:
      keep_daily: 7
      keep_weekly: 5
      keep_monthly: 12
      keep_tags: [keep]
    prune: true
  register: __backup_forget

- name: Check the repository, reading a tenth of the data
  selfhost.homelab.restic_repo:
    repository: /srv/backup/restic
    password_file: /etc/restic/password
    action: check
    read_data_subset: 10%

- name: Restore drill - the latest snapshot must equal the source
  selfhost.homelab.restic_repo:
    repository: /srv/backup/restic
    password_file: /etc/restic/password
    action: verify
    paths: [/srv/apps/photoprism]

- name: Restore the latest snapshot of /etc into /tmp/restore
  selfhost.homelab.restic_repo:
    repository: /srv/backup/restic
    password_file: /etc/restic/password
    action: restore
    paths: [/etc]
    target: /tmp/restore

- name: Remove stale locks (opt-in)
  selfhost.homelab.restic_repo:
    repository: /srv/backup/restic
    password_file: /etc/restic/password
    action: unlock
"""

RETURN = r"""
action:
  description: The action that ran.
  returned: always
  type: str
  sample: backup
repository:
  description: The repository location, with a password in its URL masked.
  returned: always
  type: str
  sample: rest:http://backup:********@127.0.0.1:8000/homelab
restic_version:
  description: The version of restic that ran.
  returned: always
  type: str
  sample: 0.18.0
commands:
  description: Every restic command line that ran (no secret is ever part of a command line).
  returned: always
  type: list
  elements: list
initialized:
  description: For O(action=init), whether the repository was (or in check mode would be) initialised.
  returned: when O(action=init)
  type: bool
config:
  description: For O(action=init), the repository's config (id, version, chunker polynomial), when it exists.
  returned: when O(action=init) and the repository exists
  type: dict
snapshot_id:
  description: For O(action=backup), the new snapshot's id; null when no snapshot was written.
  returned: when O(action=backup)
  type: str
summary:
  description: For O(action=backup), restic's JSON summary of the backup (or of the dry run).
  returned: when O(action=backup)
  type: dict
  sample: {files_new: 2, files_changed: 0, dirs_new: 1, data_added: 1048, snapshot_id: 6a23c97b}
removed:
  description: For O(action=forget), the snapshots removed (in check mode, that would be removed).
  returned: when O(action=forget)
  type: list
  elements: dict
  sample: [{id: 1407baff11f0..., short_id: 1407baff, time: "2026-01-01T03:00:00Z", hostname: nas, paths: [/srv]}]
kept:
  description: For O(action=forget), the snapshots kept.
  returned: when O(action=forget)
  type: list
  elements: dict
pruned:
  description: For O(action=forget), whether C(restic prune) ran.
  returned: when O(action=forget)
  type: bool
check:
  description: For O(action=check), the outcome.
  returned: when O(action=check)
  type: dict
  contains:
    ok:
      description: Whether restic found no errors.
      type: bool
    num_errors:
      description: How many errors restic reported.
      type: int
    errors:
      description: The error lines.
      type: list
      elements: str
    read_data_subset:
      description: The data subset that was read, if any.
      type: str
snapshots:
  description: For O(action=snapshots), restic's snapshot list (C(snapshots --json)).
  returned: when O(action=snapshots)
  type: list
  elements: dict
target:
  description: For O(action=restore), the directory restored into.
  returned: when O(action=restore)
  type: str
verify:
  description: For O(action=verify), the comparison of the restored snapshot with the source.
  returned: when O(action=verify)
  type: dict
  contains:
    ok:
      description: Whether every file, directory and symlink matched.
      type: bool
    files_compared:
      description: How many regular files matched by SHA-256.
      type: int
    differ:
      description: Paths whose content (or symlink target) differs.
      type: list
      elements: str
    missing:
      description: Source paths that are not in the snapshot.
      type: list
      elements: str
    extra:
      description: Paths in the snapshot that are no longer in the source.
      type: list
      elements: str
locks_before:
  description: For O(action=unlock), the lock ids before.
  returned: when O(action=unlock)
  type: list
  elements: str
locks_after:
  description: For O(action=unlock), the lock ids after.
  returned: when O(action=unlock)
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.homelab.plugins.module_utils._restic_module import ARGUMENT_SPEC, run_module


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        mutually_exclusive=[("password", "password_file", "password_command")],
        required_if=[
            ("action", "backup", ("paths",)),
            ("action", "verify", ("paths",)),
            ("action", "forget", ("retention",)),
            ("action", "restore", ("target",)),
        ],
    )
    run_module(module)


if __name__ == "__main__":
    main()
