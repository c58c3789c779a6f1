"""Programs a test starts (output to a file, stopped with SIGTERM then SIGKILL) and waiting on conditions."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from .net import http


def wait(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    """The first truthy value of ``predicate()`` within ``timeout`` seconds; OSError (a busy server
    answering late) counts as not yet."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except OSError as exc:
            last = exc
            time.sleep(interval)
            continue
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class Proc:
    """A started program whose output goes to a file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv: list, log: Path, env: dict | None = None, cwd: str | None = None):
        self.log = log
        self._fh = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen([str(a) for a in argv], stdout=self._fh, stderr=subprocess.STDOUT, env=env,
                                      cwd=cwd, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_for(self, probe, timeout: float, what: str, interval: float = 0.2):
        """The first truthy value of ``probe()``; fails with the program's output if it exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError("%s exited with %s:\n%s" % (self.popen.args, self.popen.returncode,
                                                                 self.output()))
            try:
                result = probe()
                if result:
                    return result
            except OSError:
                pass
            time.sleep(interval)
        raise AssertionError("%s: no %s within %ss:\n%s" % (self.popen.args, what, timeout, self.output()))

    def wait_http(self, url: str, timeout: float = 20.0, ok=(200,)) -> None:
        self.wait_for(lambda: http("GET", url, timeout=1.0)[0] in ok, timeout, "answer at %s" % url, interval=0.1)

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def stop(self, grace: float = 10.0) -> int:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._fh.close()
        return self.popen.returncode
