"""`nomad agent -config` and `vault server -config` check their files at start-up like the
real agents: a broken template stops the agent with a message naming the setting."""

from __future__ import annotations

import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.support.net import free_port, http

NOMAD_BASE = '''data_dir = "{data}"
bind_addr = "127.0.0.1"
disable_update_check = true
ports {{
  http = {port}
}}
'''
NOMAD_ROLE_LIKE = NOMAD_BASE + '''region = "global"
datacenter = "home"
name = "box"
log_level = "INFO"
server {{
  enabled = true
  bootstrap_expect = 1
}}
client {{
  enabled = true
  servers = ["127.0.0.1:4647"]
  meta {{
    ingress = "true"
  }}
  host_volume "photos" {{
    path = "{data}/photos"
    read_only = false
  }}
}}
acl {{
  enabled = true
}}
consul {{
  address = "127.0.0.1:8500"
  auto_advertise = true
  service_identity {{
    aud = ["consul.io"]
    ttl = "1h"
  }}
}}
vault {{
  enabled = true
  address = "http://127.0.0.1:8200"
  jwt_auth_backend_path = "jwt-nomad"
  default_identity {{
    aud = ["vault.io"]
    ttl = "1h"
  }}
}}
telemetry {{
  prometheus_metrics = true
}}
plugin "raw_exec" {{
  config {{
    enabled = true
  }}
}}
plugin "docker" {{
  config {{
    volumes {{
      enabled = true
    }}
  }}
}}
'''


def _run(argv, timeout=30):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, as the roles' certificate tasks would provide."""
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "agent.pem", tmp / "agent-key.pem"
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
          "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert]).check_returncode()
    return cert, key


@pytest.mark.parametrize(("extra", "message"), [
    ("foo = 1\n", "unexpected key foo"),
    ("client {\n  enabled = true\n  metaa {\n    a = \"b\"\n  }\n}\n", "unexpected key client.metaa"),
    ("server {\n  enabled = true\n  bootstrap_expected = 1\n}\n", "unexpected key server.bootstrap_expected"),
    ("server {\n  enabled = \"yes please\"\n}\n", "server.enabled: invalid value"),
    ("client {\n  enabled = true\n  host_volume \"x\" {\n    pth = \"/x\"\n  }\n}\n",
     "unexpected key client.host_volume.x.pth"),
    ("server {\n  enabled = true\n", "HCL syntax error"),
    ("", "Must specify either server, client or dev mode for the agent."),
    ("server {\n  enabled = true\n}\nplugin \"rawexec\" {\n  config {\n    enabled = true\n  }\n}\n",
     'Error loading plugin "rawexec"'),
    ("server {\n  enabled = true\n}\ntls {\n  http = true\n  cert_file = \"/nonexistent.pem\"\n"
     "  key_file = \"/nonexistent-key.pem\"\n}\n", "open /nonexistent.pem: no such file or directory"),
])
def test_nomad_refuses_an_invalid_or_unknown_setting(agent_bin, tmp_path, extra, message):
    conf = tmp_path / "nomad.d"
    conf.mkdir()
    (conf / "nomad.hcl").write_text(NOMAD_BASE.format(data=tmp_path / "data", port=free_port()) + extra)
    result = _run([agent_bin / "nomad", "agent", "-config", conf])
    assert result.returncode == 1, result
    assert message in result.stderr, result.stderr


def test_nomad_refuses_a_relative_data_dir(agent_bin, tmp_path):
    (tmp_path / "a.hcl").write_text('data_dir = "data"\nserver {\n  enabled = true\n}\n')
    result = _run([agent_bin / "nomad", "agent", "-config", tmp_path / "a.hcl"])
    assert result.returncode == 1 and "data_dir must be given as an absolute path" in result.stderr


def test_nomad_starts_on_a_role_like_config_dir_with_tls(agent_bin, procs, tmp_path, tls_files):
    cert, key = tls_files
    port = free_port()
    conf = tmp_path / "nomad.d"
    conf.mkdir()
    (conf / "nomad.hcl").write_text(NOMAD_ROLE_LIKE.format(data=tmp_path / "data", port=port))
    # A second file merges into the first, as Nomad loads a directory in name order.
    (conf / "tls.json").write_text('{"tls": {"http": true, "cert_file": "%s", "key_file": "%s"}}' % (cert, key))
    proc = procs([agent_bin / "nomad", "agent", "-config", conf], tmp_path / "nomad.log")
    context = ssl.create_default_context(cafile=str(cert))
    url = "https://127.0.0.1:%d/v1/agent/health" % port
    for _attempt in range(100):
        assert proc.popen.poll() is None, proc.output()
        try:
            with urllib.request.urlopen(url, context=context, timeout=1) as resp:
                assert resp.status == 200
                break
        except OSError:
            time.sleep(0.1)
    else:
        raise AssertionError("nomad did not answer over TLS:\n" + proc.output())
    # ACLs from the config are on: no token, no jobs.
    req = urllib.request.Request("https://127.0.0.1:%d/v1/jobs" % port)
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(req, context=context, timeout=5)
    assert denied.value.code == 403


VAULT_BASE = '''storage "raft" {{
  path = "{data}"
  node_id = "box"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  {tls}
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cport}"
disable_mlock = true
'''


def _vault_conf(tmp_path, tls="tls_disable = true", extra="", port=None):
    port = port or free_port()
    text = VAULT_BASE.format(data=tmp_path / "raft", port=port, cport=free_port(), tls=tls) + extra
    path = tmp_path / "vault.hcl"
    path.write_text(text)
    return path, port


@pytest.mark.parametrize(("extra", "message"), [
    ('ui = "maybe"\n', "ui: invalid value"),
    ('default_lease_ttl = "a week"\n', "default_lease_ttl: invalid value"),
    ('storage "file" {\n  path = "/tmp/x"\n}\n', "only one 'storage' block is permitted"),
    ('listener "tcp" {\n  address = 8200\n}\n', "listener.tcp.address: invalid value"),
])
def test_vault_refuses_an_invalid_setting(agent_bin, tmp_path, extra, message):
    path, _port = _vault_conf(tmp_path, extra=extra)
    result = _run([agent_bin / "vault", "server", "-config=%s" % path])
    assert result.returncode == 1, result
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(("text", "message"), [
    ('listener "tcp" {\n  address = "127.0.0.1:1"\n  tls_disable = true\n}\n', "A storage backend must be specified"),
    ('storage "consul" {\n  address = "127.0.0.1:8500"\n}\nlistener "tcp" {\n  tls_disable = true\n}\n',
     'Storage type "consul" is a real Vault backend the simulator does not serve'),
    ('storage "floppy" {\n}\nlistener "tcp" {\n  tls_disable = true\n}\n', "Unknown storage type floppy"),
    ('storage "raft" {\n  path = "/tmp/x"\n}\nlistener "tcp" {\n  tls_disable = true\n}\n',
     "Cluster address must be set when using raft storage"),
    ('storage "raft" {\n  node_id = "a"\n}\ncluster_addr = "https://127.0.0.1:8201"\n', "'path' must be set"),
    ('storage "file" {\n  path = "/tmp/x"\n}\nlistener "tcp" {\n  address = "127.0.0.1:1"\n}\n',
     "'tls_cert_file' and 'tls_key_file' must be set"),
])
def test_vault_refuses_a_config_it_cannot_start_with(agent_bin, tmp_path, text, message):
    path = tmp_path / "vault.hcl"
    path.write_text(text)
    result = _run([agent_bin / "vault", "server", "-config=%s" % path])
    assert result.returncode == 1, result
    assert message in result.stderr, result.stderr


def test_vault_warns_about_an_unknown_key_and_starts_over_tls(agent_bin, procs, tmp_path, tls_files):
    cert, key = tls_files
    path, port = _vault_conf(tmp_path, tls='tls_cert_file = "%s"\n  tls_key_file = "%s"' % (cert, key),
                             extra="not_a_vault_setting = true\n")
    proc = procs([agent_bin / "vault", "server", "-config=%s" % path], tmp_path / "vault.log")
    context = ssl.create_default_context(cafile=str(cert))
    url = "https://127.0.0.1:%d/v1/sys/seal-status" % port
    for _attempt in range(100):
        assert proc.popen.poll() is None, proc.output()
        try:
            with urllib.request.urlopen(url, context=context, timeout=1) as resp:
                assert resp.status == 200
                break
        except OSError:
            time.sleep(0.1)
    else:
        raise AssertionError("vault did not answer over TLS:\n" + proc.output())
    assert "WARNING: unknown or unsupported field not_a_vault_setting" in proc.output()
    # Plain HTTP is not served on a TLS listener.
    with pytest.raises(OSError):
        http("GET", "http://127.0.0.1:%d/v1/sys/seal-status" % port, timeout=2)
