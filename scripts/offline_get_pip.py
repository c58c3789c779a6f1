"""Offline stand-in for the get-pip script that ansible-test downloads.

ansible-test sanity bootstraps pip in each of its virtualenvs with a script it
fetches from a host this network cannot reach. This stand-in does the same job
from the standard library: ensurepip, then pip installs what it was asked for
through the machine's own pip configuration (index, CA bundle).
"""

import os
import subprocess
import sys


def main():
    import ensurepip

    ensurepip.bootstrap(upgrade=True)
    # ensurepip sets PIP_CONFIG_FILE=/dev/null for itself; drop it so pip sees
    # the machine's configuration.
    env = dict(os.environ)
    env.pop("PIP_CONFIG_FILE", None)
    os.environ.pop("PIP_CONFIG_FILE", None)
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    if args:
        subprocess.check_call([sys.executable, "-m", "pip", "install", *args], env=env)


if __name__ == "__main__":
    main()
