"""A Nomad HTTP API simulator (Nomad 1.10) for the collection's tests; see README.md."""

from .server import NomadSim

__all__ = ["NomadSim"]
