"""The vault_job filter: one naming rule for a job's Vault path, policy, role and template."""

from __future__ import annotations

import hcl2
import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.homelab.plugins.filter.vault_job import FilterModule, vault_job


def test_naming_rule():
    out = vault_job("traefik", "kv", fields=["do_auth_token"])
    assert out["path"] == "kv/data/traefik" and out["kv_path"] == "traefik"
    assert out["metadata_path"] == "kv/metadata/traefik"
    assert out["policy_name"] == out["jwt_role_name"] == "traefik"
    assert out["jwt_role"]["bound_claims"] == {"nomad_job_id": "traefik"}
    assert out["jwt_role"]["token_policies"] == ["traefik"]
    assert out["vault"] == {"role": "traefik", "change_mode": "restart"}
    assert out["vault_api"] == {"Role": "traefik", "ChangeMode": "restart"}
    assert out["env"] == {"DO_AUTH_TOKEN": "do_auth_token"}


def test_policy_reads_the_job_path_only_plus_declared_paths():
    out = vault_job("nextcloud", "secrets", extra_paths=["secrets/data/shared/smtp",
                                                         {"path": "pki/issue/web", "capabilities": ["update"]}])
    rules = {}
    for block in hcl2.loads(out["policy"])["path"]:
        for path, body in block.items():
            rules[path.strip('"')] = [c.strip('"') for c in body["capabilities"]]
    assert rules == {"secrets/data/nextcloud": ["read"], "secrets/data/shared/smtp": ["read"],
                     "pki/issue/web": ["update"]}


def test_template_names_fields_never_values():
    out = vault_job("app", fields={"db_password": "POSTGRES_PASSWORD", "api-key": None})
    data = out["template"]["data"]
    assert data.startswith('{{ with secret "kv/data/app" }}\n') and data.endswith("{{ end }}\n")
    assert 'POSTGRES_PASSWORD={{ index .Data.data "db_password" | toJSON }}' in data
    assert 'API_KEY={{ index .Data.data "api-key" | toJSON }}' in data
    assert out["template"]["env"] is True and out["template"]["destination"] == "secrets/vault.env"
    assert out["template_api"]["EmbeddedTmpl"] == data and out["template_api"]["Envvars"] is True
    assert vault_job("app")["template"] is None


@pytest.mark.parametrize("args,kwargs,message", [
    (("Traefik",), {}, "job 'Traefik' must be a Nomad job name"),
    (("a b",), {}, "job"),
    (("app", "kv//x"), {}, "mount 'kv//x' is not a valid"),
    (("app",), {"fields": ["bad field"]}, "fields: 'bad field'"),
    (("app",), {"fields": {"f": "1BAD"}}, "environment variable name '1BAD'"),
    (("app",), {"extra_paths": [{"path": "x", "capabilities": ["sudo"]}]}, "capabilities must be some of"),
    (("app",), {"extra_paths": [""]}, "extra_paths entries"),
    (("app",), {"change_mode": "reload"}, "change_mode"),
])
def test_bad_input_names_the_argument(args, kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        vault_job(*args, **kwargs)


def test_registered():
    assert FilterModule().filters()["vault_job"] is vault_job
