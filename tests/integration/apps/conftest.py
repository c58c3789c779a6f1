"""Fixtures for the apps integration tests; they live in apps_it.py, shared with the tests."""

import os
import sys

# apps_it.py sits beside this file; importlib mode does not put this directory on
# sys.path, and a plain `conftest` import would find another area's conftest.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=unused-import,wrong-import-position
from apps_it import nomad, play  # noqa: E402,F401  (pytest finds fixtures by name in this module)
