"""Fixtures for the restic_repo integration tests; they live in restic_it.py, shared with the tests."""

# pylint: disable=unused-import
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
