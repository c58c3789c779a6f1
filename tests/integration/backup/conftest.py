"""Fixtures for the backup program's integration tests: real restic, local and S3 (moto) repositories.

The servers and directories come from tests/integration/restic/restic_it.py (the
same set-up the restic_repo tests use: moto's S3 server on a free loopback port
per xdist worker, source data under /var/tmp with stable ancestors, repositories
on tmpfs).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "restic"))

# pylint: disable=unused-import,wrong-import-position
from backup_it import backup_set, program  # noqa: E402,F401
from restic_it import data_root, s3_server, src_root  # noqa: E402,F401
