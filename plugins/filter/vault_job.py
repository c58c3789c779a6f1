# Copyright: selfhost.homelab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vault_job filter: a Nomad job's Vault path, policy, JWT role and template block.

One naming rule (docs/design.md, "Names"): the secrets of job <job> live at
<mount>/data/<job>, one field per value; policy <job> may read that path only
(plus paths the role declares); JWT auth role <job> is bound to the claim
nomad_job_id = <job> and grants policy <job>; the job's vault block names role
<job>. Roles call this filter instead of spelling paths by hand.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

_JOB = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,126}[a-z0-9])?$")
_MOUNT = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*$")
_FIELD = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CAPS = ("create", "read", "update", "patch", "delete", "list")
# Nomad's default workload identity for Vault (Nomad >= 1.7) carries these claims;
# https://developer.hashicorp.com/nomad/docs/integrations/vault/acl
_AUDIENCE = "vault.io"


def _env_name(field):
    return re.sub(r"[^A-Za-z0-9_]", "_", field).upper()


def _fields(fields):
    if fields is None:
        return []
    if isinstance(fields, str):
        fields = [fields]
    if isinstance(fields, dict):
        pairs = list(fields.items())
    elif isinstance(fields, (list, tuple)):
        pairs = [(f, None) for f in fields]
    else:
        raise AnsibleFilterError("vault_job: fields must be a list of field names or a {field: ENV_NAME} mapping")
    out = []
    for field, env in pairs:
        if not isinstance(field, str) or not _FIELD.match(field):
            raise AnsibleFilterError("vault_job: fields: %r is not a valid secret field name "
                                     "(letters, digits, '_', '-', '.')" % (field,))
        env = env or _env_name(field)
        if not isinstance(env, str) or not _ENV.match(env):
            raise AnsibleFilterError("vault_job: fields: environment variable name %r for field %r is not valid"
                                     % (env, field))
        out.append((field, env))
    return out


def _extra(paths, mount):
    rules = []
    for item in paths or []:
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not item["path"].strip("/"):
            raise AnsibleFilterError("vault_job: extra_paths entries must be a path or {path, capabilities}, "
                                     "got %r" % (item,))
        caps = item.get("capabilities", ["read"])
        if isinstance(caps, str):
            caps = [caps]
        bad = [c for c in caps if c not in _CAPS]
        if bad or not caps:
            raise AnsibleFilterError("vault_job: extra_paths %r: capabilities must be some of %s, got %r"
                                     % (item["path"], ", ".join(_CAPS), caps))
        rules.append((item["path"].strip("/"), list(caps)))
    return rules


def _policy(rules):
    blocks = []
    for path, caps in rules:
        blocks.append('path "%s" {\n  capabilities = [%s]\n}\n' % (path, ", ".join('"%s"' % c for c in caps)))
    return "\n".join(blocks)


def vault_job(job, mount="kv", fields=None, extra_paths=None, destination="secrets/vault.env",
              change_mode="restart", audience=_AUDIENCE, token_period="30m"):
    """Everything a Nomad job needs from Vault, named by the homelab rule."""
    if not isinstance(job, str) or not _JOB.match(job):
        raise AnsibleFilterError("vault_job: job %r must be a Nomad job name of lower-case letters, digits, "
                                 "'-' and '_' (it is also the Vault policy and role name)" % (job,))
    if not isinstance(mount, str) or not _MOUNT.match(mount.strip("/")):
        raise AnsibleFilterError("vault_job: mount %r is not a valid Vault mount path" % (mount,))
    if change_mode not in ("restart", "noop", "signal", "script"):
        raise AnsibleFilterError("vault_job: change_mode must be restart, noop, signal or script, got %r"
                                 % (change_mode,))
    mount = mount.strip("/")
    data_path = "%s/data/%s" % (mount, job)
    pairs = _fields(fields)
    rules = [(data_path, ["read"])] + _extra(extra_paths, mount)
    lines = ['{{ with secret "%s" }}' % data_path]
    for field, env in pairs:
        lines.append('%s={{ index .Data.data "%s" | toJSON }}' % (env, field))
    lines.append("{{ end }}")
    template_data = "\n".join(lines) + "\n"
    template = {"data": template_data, "destination": destination, "env": True, "change_mode": change_mode}
    return {
        "job": job,
        "mount": mount,
        "kv_path": job,
        "path": data_path,
        "metadata_path": "%s/metadata/%s" % (mount, job),
        "fields": [f for f, _e in pairs],
        "env": dict((env, f) for f, env in pairs),
        "policy_name": job,
        "policy": _policy(rules),
        "jwt_role_name": job,
        "jwt_role": {
            "role_type": "jwt",
            "bound_audiences": [audience],
            "user_claim": "/nomad_job_id",
            "user_claim_json_pointer": True,
            "bound_claims": {"nomad_job_id": job},
            "claim_mappings": {"nomad_namespace": "nomad_namespace", "nomad_job_id": "nomad_job_id",
                               "nomad_task": "nomad_task"},
            "token_type": "service",
            "token_policies": [job],
            "token_period": token_period,
        },
        "vault": {"role": job, "change_mode": change_mode},
        "vault_api": {"Role": job, "ChangeMode": change_mode},
        "template": template if pairs else None,
        "template_api": {"EmbeddedTmpl": template_data, "DestPath": destination, "Envvars": True,
                         "ChangeMode": change_mode} if pairs else None,
    }


class FilterModule:
    """selfhost.homelab Vault naming filters."""

    def filters(self):
        return {"vault_job": vault_job}
