"""Make the checkout importable as ansible_collections.selfhost.homelab.

scripts/bootstrap.sh links .cache/collections/ansible_collections/selfhost/homelab
to the checkout; scripts/test.sh also puts that directory on PYTHONPATH. This
keeps `pytest` working when it is called directly inside the venv.
"""

import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_COLLECTIONS = os.path.join(_REPO, ".cache", "collections")
_LINK = os.path.join(_COLLECTIONS, "ansible_collections", "selfhost", "homelab")
if not os.path.exists(_LINK):
    os.makedirs(os.path.dirname(_LINK), exist_ok=True)
    os.symlink("../../../..", _LINK)
# The repository root, for test support code: `from tests.simulators import ...`.
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
# pytest-ansible (run with --ansible-unit-inject-only, see pyproject.toml) hands
# this path to Ansible's collection loader; ansible-playbook started by
# integration tests finds the collection the same way.
_paths = [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
if _COLLECTIONS not in _paths:
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join([_COLLECTIONS, *_paths])
