"""Every host role rejects a wrongly typed variable before it changes anything.

Ansible checks a role's meta/argument_specs.yml as the role's first task. This
runs that same check (ansible.builtin.validate_argument_spec with the role's
own spec) in a localhost play, so the role itself never runs on this machine:
good input passes, a wrongly typed variable fails with its name in the message.
(A string given for a list is not wrong: Ansible splits it on commas.)
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# role -> (good variables, {variable: wrongly typed value})
CASES = {
    "base": (
        {"base_admin_users": [{"name": "owner", "ssh_keys": ["ssh-ed25519 AAAA x"]}]},
        {
            "base_firewall_tcp_ports": ["ssh"],
            "base_ssh_password_authentication": "maybe",
            "base_cpu_max_cstate": "deep",
            "base_ssh_permit_root_login": "yes",
            "base_dotfiles_repos": [{"user": "owner"}],
        },
    ),
    "docker": (
        {"docker_users": ["owner"]},
        {"docker_log_max_file": "three", "docker_source": "snap", "docker_daemon_options": ["debug"]},
    ),
    "dnscrypt_proxy": (
        {"dnscrypt_proxy_domain": "home.example.test", "dnscrypt_proxy_ingress_addresses": ["192.0.2.1"]},
        {
            "dnscrypt_proxy_port": "dns",
            "dnscrypt_proxy_ingress_addresses": {"ingress": "192.0.2.1"},
            "dnscrypt_proxy_static_servers": [{"name": "x"}],
            "dnscrypt_proxy_query_log": "sometimes",
        },
    ),
    "host_metrics": (
        {"host_metrics_port": 9100},
        {
            "host_metrics_port": "metrics",
            "host_metrics_collectors_enabled": {"zfs": True},
            "host_metrics_smartmon_enabled": "often",
        },
    ),
}


def _validate(tmp_path, role, variables):
    spec = yaml.safe_load(open(os.path.join(_REPO, "roles", role, "meta", "argument_specs.yml")))
    play = [{
        "name": "Validate",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{
            "name": "Validate %s" % role,
            "ansible.builtin.validate_argument_spec": {
                "argument_spec": spec["argument_specs"]["main"]["options"],
                "provided_arguments": variables,
            },
        }],
    }]
    playbook = tmp_path / ("%s.yml" % role)
    playbook.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default")
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
         "-i", "localhost,", "-c", "local", str(playbook)],
        capture_output=True, text=True, timeout=120, env=env, cwd=_REPO, check=False,
    )


@pytest.mark.parametrize("role", sorted(CASES))
def test_good_variables_pass(tmp_path, role):
    result = _validate(tmp_path, role, CASES[role][0])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("role", "name", "value"),
    [(role, name, value) for role, (_good, bad) in sorted(CASES.items()) for name, value in bad.items()],
)
def test_wrong_type_fails_naming_the_variable(tmp_path, role, name, value):
    good = dict(CASES[role][0])
    good[name] = value
    result = _validate(tmp_path, role, good)
    assert result.returncode != 0
    assert name in result.stdout, result.stdout
