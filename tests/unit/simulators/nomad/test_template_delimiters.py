"""The simulator's template renderer honours a template block's left_delimiter/right_delimiter."""

from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.simulators.nomad import template  # noqa: E402


def _secret(path):
    assert path == "kv/data/traefik"
    return {"Data": {"data": {"token": "s3cret"}}}


def test_custom_delimiters_leave_go_templates_of_the_program_alone():
    text = ('rule: Host(`{{ .Name }}.example.test`)\n'
            'token: [[ with secret "kv/data/traefik" ]][[ .Data.data.token ]][[ end ]]\n')
    out = template.render(text, lambda k: "", _secret, "t", "[[", "]]")
    assert out == "rule: Host(`{{ .Name }}.example.test`)\ntoken: s3cret\n"


def test_default_delimiters_unchanged():
    out = template.render('{{ with secret "kv/data/traefik" }}{{ .Data.data.token }}{{ end }}', lambda k: "", _secret)
    assert out == "s3cret"


def test_to_json_pipe_as_the_vault_job_filter_writes_it():
    from ansible_collections.selfhost.homelab.plugins.filter.vault_job import vault_job

    block = vault_job("traefik", "kv", {"do_auth_token": "DO_AUTH_TOKEN"})["template"]
    out = template.render(block["data"], lambda k: "",
                          lambda p: {"Data": {"data": {"do_auth_token": 'a"b\\c'}}})
    assert out == '\nDO_AUTH_TOKEN="a\\"b\\\\c"\n\n'
    assert template.parse_env_file(out) == {"DO_AUTH_TOKEN": 'a"b\\c'}
