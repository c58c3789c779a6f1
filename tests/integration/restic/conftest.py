"""Fixtures for the restic_repo integration tests; they live in restic_it.py, shared with the tests."""

import os
import sys

# restic_it.py sits beside this file; pytest's import mode may or may not put
# this directory on sys.path (importlib mode does not), so do it here.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=unused-import,wrong-import-position
from restic_it import (  # noqa: F401  (pytest finds fixtures by name in this module)
    data_root,
    local_repo,
    lock_holder,
    repo,
    rest_server,
    s3_server,
    src_root,
    sshd,
    version,
)
