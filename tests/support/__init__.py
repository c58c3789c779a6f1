"""Code the integration tests share: loopback networking, started programs, the real Consul.

Also the unit tests' fake hvac adapter (hvac_fake.py) and a module main() runner (module_main.py).
Test support only (like tests/simulators): imported as ``tests.support``; tests/conftest.py puts the
repository root on sys.path.
"""
