"""Fixtures for the monitoring role's tests; the helpers live in monitoring_it.py."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=unused-import,wrong-import-position
from monitoring_it import rendered, rendered_notify, tools  # noqa: E402,F401
