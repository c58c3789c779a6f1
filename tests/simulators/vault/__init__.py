"""Vault API simulator (test support; not shipped in the collection build).

    from tests.simulators.vault import start_dev
    with start_dev(root_token="root") as sim:   # a SimServer; sim.app is the VaultApp
        ...  # talk to sim.address over HTTP

Run it as a process: ``python -m tests.simulators.vault server -dev`` (see README.md).
"""

from __future__ import annotations

from ..base import SimServer
from .app import VERSION, VaultApp

__all__ = ["VERSION", "VaultApp", "start", "start_dev"]


def start_dev(root_token: str = "root", host: str = "127.0.0.1", port: int = 0,
              log_path: str | None = None) -> SimServer:
    """A started dev-mode server: initialised, unsealed, `secret/` KV v2 mounted."""
    app = VaultApp(dev=True, dev_root_token=root_token)
    return SimServer(app, host=host, port=port, log_path=log_path).start()


def start(data_dir: str, host: str = "127.0.0.1", port: int = 0, log_path: str | None = None) -> SimServer:
    """A started server on file storage in ``data_dir``: uninitialised, or sealed if it holds data."""
    app = VaultApp(data_dir=data_dir)
    return SimServer(app, host=host, port=port, log_path=log_path).start()
