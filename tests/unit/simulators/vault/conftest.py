"""Make the repository root importable, so tests can `import tests.simulators.vault`."""

import sys
from pathlib import Path

import pytest

_REPO = str(Path(__file__).resolve().parents[4])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)


@pytest.fixture
def dev():
    """A dev-mode simulator (root token ``root``) on a free loopback port, stopped after the test."""
    from tests.simulators.vault import start_dev

    sim = start_dev(root_token="root")
    try:
        yield sim
    finally:
        sim.stop()
