"""Child processes of the fleet: started with their own environment, stopped by their PID."""

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

_STOP_GRACE = 10.0


@dataclass
class Service:
    name: str
    args: list[str]
    env: dict[str, str]
    health_url: str | None = None
    log_path: Path | None = None
    cwd: Path | None = None  # where `python -m` finds the code (None: this checkout)
    # Given to a replacement with the PID of the process it replaces (see `supervisor`).
    predecessor_flag: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, *extra_args: str) -> None:
        out: IO[bytes] | int = subprocess.DEVNULL
        if self._log is not None:  # a restart: the log goes on in a new handle
            self._log.close()
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = out = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, *self.args, *extra_args],
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
        )

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.health_url is not None:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.process.returncode}")
            try:
                if httpx.get(self.health_url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not healthy after {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()


def stop_all(services: list[Service]) -> None:
    for service in reversed(services):
        service.stop()
