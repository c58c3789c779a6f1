"""The vault_job filter inside Ansible: its template text survives templating untouched."""

from __future__ import annotations

from ansible_collections.selfhost.homelab.plugins.filter.vault_job import vault_job


def test_template_block_is_not_rendered_again_by_ansible(play, tmp_path):
    dest = tmp_path / "vault.env.tpl"
    policy = tmp_path / "policy.hcl"
    res = play([
        {"name": "build", "ansible.builtin.set_fact": {
            "spec": "{{ 'traefik' | selfhost.homelab.vault_job('kv', fields=['do_auth_token']) }}"}},
        {"name": "write template", "ansible.builtin.copy": {"content": "{{ spec.template.data }}", "dest": str(dest),
                                                            "mode": "0600"}},
        {"name": "write policy", "ansible.builtin.copy": {"content": "{{ spec.policy }}", "dest": str(policy),
                                                          "mode": "0600"}},
        {"name": "bad job", "ansible.builtin.debug": {"msg": "{{ 'Bad Job' | selfhost.homelab.vault_job }}"},
         "ignore_errors": True},
    ])
    assert res.rc == 0, res.stdout + res.stderr
    expected = vault_job("traefik", "kv", fields=["do_auth_token"])
    assert dest.read_text() == expected["template"]["data"]
    assert policy.read_text() == expected["policy"]
    assert res["bad job"]["failed"] is True and "must be a Nomad job name" in res["bad job"]["msg"]
