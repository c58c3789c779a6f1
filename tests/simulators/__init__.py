"""API simulators for programs that cannot be obtained here (Nomad, Vault).

Test support only: excluded from the collection build. Every known difference
from the real program is listed in the simulator's README.
"""
