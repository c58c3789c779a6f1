"""The simulator as a process: ``python -m tests.simulators.nomad agent -dev ...`` with a config file and data dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

JOB = 'job "cli" {\n  group "g" {\n    task "t" {\n      driver = "exec"\n      config {\n' \
      '        command = "/bin/sleep"\n      }\n    }\n  }\n}\n'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.simulators.nomad", "agent", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc


def _wait_up(base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            requests.get(base + "/v1/status/leader", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("simulator did not come up")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_agent_with_config_file_and_data_dir(tmp_path):
    port = _free_port()
    data = tmp_path / "data"
    data.mkdir()
    confdir = tmp_path / "nomad.d"
    confdir.mkdir()
    config = confdir / "nomad.hcl"
    config.write_text('bind_addr = "127.0.0.1"\ndata_dir = "%s"\nregion = "home"\ndisable_update_check = true\n'
                      "ports {\n  http = %d\n}\nacl {\n  enabled = true\n}\n" % (data, port))
    base = "http://127.0.0.1:%d" % port
    log = tmp_path / "requests.jsonl"
    proc = _start(["-dev", "-config", str(confdir), "-log-requests", str(log)])
    try:
        _wait_up(base, proc)
        assert requests.get(base + "/v1/jobs", timeout=5).status_code == 403
        token = requests.post(base + "/v1/acl/bootstrap", timeout=5).json()["SecretID"]
        headers = {"X-Nomad-Token": token}
        agent = requests.get(base + "/v1/agent/self", headers=headers, timeout=5).json()
        assert agent["config"]["Region"] == "home" and agent["config"]["ACL"]["Enabled"] is True
        job = requests.post(base + "/v1/jobs/parse", json={"JobHCL": JOB}, headers=headers, timeout=5).json()
        assert requests.post(base + "/v1/jobs", json={"Job": job}, headers=headers, timeout=5).status_code == 200
    finally:
        _stop(proc)
    assert (data / "sim-state.json").exists()
    assert len(log.read_text().splitlines()) >= 5
    proc = _start(["-dev", "-config", str(config)])
    try:
        _wait_up(base, proc)
        got = requests.get(base + "/v1/job/cli", headers=headers, timeout=5)
        assert got.status_code == 200 and got.json()["ID"] == "cli", "state must survive a restart"
        again = requests.post(base + "/v1/acl/bootstrap", timeout=5)
        assert again.status_code == 400
    finally:
        _stop(proc)


def test_version_and_flags(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tests.simulators.nomad", "version"], cwd=REPO,
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0 and out.stdout.startswith("Nomad v1.10")
    shim = os.path.join(REPO, "tests", "simulators", "nomad", "bin", "nomad")
    env = dict(os.environ, NOMAD_SIM_PYTHON=sys.executable)
    out = subprocess.run([shim, "version"], cwd=str(tmp_path), capture_output=True, text=True, timeout=30,
                         check=False, env=env)
    assert out.returncode == 0 and out.stdout.startswith("Nomad v1.10"), out.stderr
    port = _free_port()
    proc = _start(["-dev", "-bind", "127.0.0.1", "-http-port", str(port)])
    try:
        _wait_up("http://127.0.0.1:%d" % port, proc)
        leader = requests.get("http://127.0.0.1:%d/v1/status/leader" % port, timeout=5)
        assert leader.json() == "127.0.0.1:4647"
    finally:
        _stop(proc)
