"""The real Consul (Debian bullseye's 1.8.7, fetched by scripts/bootstrap.d/agents.sh) on free loopback ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

from .net import free_port, http
from .process import Proc

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("HOMELAB_CACHE") or Path.home() / ".cache" / "selfhost-homelab")


def consul_bin() -> Path:
    """The consul executable; scripts/bootstrap.d/agents.sh fetches it when it is missing."""
    path = CACHE / "debs" / "bullseye" / "consul" / "usr" / "bin" / "consul"
    if not path.exists():
        subprocess.run(["bash", str(REPO / "scripts" / "bootstrap.d" / "agents.sh")], check=True, timeout=600)
    assert path.exists(), "consul was not fetched by scripts/bootstrap.d/agents.sh"
    return path


class Consul:
    """One Consul agent on free loopback ports, its output in ``workdir/consul.log``; call ``stop()``.

    ``dev``: a dev agent (in-memory); else a one-server cluster with its data under ``workdir/data``.
    ``master``: turns ACLs on, default deny, with this management token (and ``agent`` as the agent token).
    ``config_dir``: a directory of service definitions and other config the agent reads (and reloads).
    Returns once there is a leader and, with ACLs, once the management token is accepted.
    """

    def __init__(self, workdir: Path, *, dev: bool = True, master: str | None = None, agent: str | None = None,
                 config_dir: Path | None = None, timeout: float = 90.0):
        self.binary = consul_bin()
        self.master = master
        self.http_port = free_port()
        self.address = "http://127.0.0.1:%d" % self.http_port
        config = {"disable_update_check": True, "bind_addr": "127.0.0.1", "client_addr": "127.0.0.1",
                  "ports": {"http": self.http_port, "dns": -1, "grpc": -1, "serf_lan": free_port(),
                            "serf_wan": free_port(), "server": free_port()}}
        if master:
            tokens = {"master": master, **({"agent": agent} if agent else {})}
            config["acl"] = {"enabled": True, "default_policy": "deny", "down_policy": "extend-cache",
                             "tokens": tokens}
        (workdir / "consul.json").write_text(json.dumps(config))
        argv = [self.binary, "agent", "-config-file", workdir / "consul.json"]
        if dev:
            argv.append("-dev")
        else:
            argv += ["-server", "-bootstrap-expect", "1", "-data-dir", workdir / "data",
                     "-node", "consul-it-%s" % uuid.uuid4().hex[:8]]
        if config_dir is not None:
            argv += ["-config-dir", config_dir]
        self.proc = Proc(argv, workdir / "consul.log")
        try:
            self.proc.wait_for(lambda: self.api("GET", "/status/leader", token="")[1], timeout, "leader")
            if master:
                self.proc.wait_for(lambda: self.api("GET", "/acl/token/self")[0] == 200, 60, "management token")
        except BaseException:
            self.stop()
            raise

    def api(self, method: str, path: str, body=None, token: str | None = None):
        """(status, JSON or text) of ``METHOD /v1<path>``; ``token`` None sends the management token, "" none."""
        token = self.master if token is None else token
        return http(method, self.address + "/v1" + path, body, {"X-Consul-Token": token} if token else {},
                    timeout=5.0)

    def output(self) -> str:
        return self.proc.output()

    def reload(self) -> None:
        """What `systemctl reload consul` does (the unit's ExecReload sends SIGHUP)."""
        self.proc.signal(signal.SIGHUP)

    def stop(self) -> int:
        return self.proc.stop(grace=20.0)
