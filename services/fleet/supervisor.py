"""Keeps the fleet's processes running under `make run`.

A process that exits while the fleet is not stopping is started again after a backoff that
doubles with each exit in a row (1 s, 2 s, 4 s … at most 30 s) and starts from 1 s again once
the process has stayed up for a minute; the others keep running meanwhile. A worker pool's
replacement is given the PID of the process it replaces (`Service.predecessor_flag`) and takes
over the jobs that one had taken (`services/workers/recovery.py`).

The status file (`DATA_DIR/fleet.json`) says which PID each process has now and how often it
was restarted; it is rewritten at each change and removed when the fleet stops.
"""

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.fleet.processes import Service

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0  # a process up this long starts its backoff from the first step again


@dataclass
class _Watch:
    service: Service
    started: float  # monotonic time of its last start
    exits: int = 0  # exits in a row, each before STABLE_AFTER
    restarts: int = 0
    exited_pid: int | None = None
    restart_at: float | None = None  # set while it waits for its restart


class Supervisor:
    def __init__(
        self,
        services: list[Service],
        status_path: Path,
        say: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.status_path = status_path
        self.say = say
        self.clock = clock
        self.watches = [_Watch(service, clock()) for service in services]
        self.write_status()

    def check(self) -> None:
        """Notes the processes that exited and restarts those whose backoff is over."""
        now = self.clock()
        for watch in self.watches:
            process = watch.service.process
            if watch.restart_at is not None:
                if now >= watch.restart_at:
                    self.restart(watch, now)
            elif process is not None and (code := process.poll()) is not None:
                self.exited(watch, process.pid, code, now)

    def exited(self, watch: _Watch, pid: int, code: int, now: float) -> None:
        if now - watch.started >= STABLE_AFTER:
            watch.exits = 0
        watch.exits += 1
        delay = min(FIRST_BACKOFF * 2 ** min(watch.exits - 1, 10), MAX_BACKOFF)
        watch.exited_pid, watch.restart_at = pid, now + delay
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited ({code})"
        self.say(f"{watch.service.name} (pid {pid}) {how}; restarting it in {delay:g} s")
        self.write_status()

    def restart(self, watch: _Watch, now: float) -> None:
        service, flag = watch.service, watch.service.predecessor_flag
        service.start(*((flag, str(watch.exited_pid)) if flag and watch.exited_pid else ()))
        watch.started, watch.restart_at = now, None
        watch.restarts += 1
        pid = service.process.pid if service.process else None
        self.say(f"{service.name} restarted (restart {watch.restarts}): pid {pid}")
        self.write_status()

    def write_status(self) -> None:
        status = {
            "pid": os.getpid(),
            "services": {
                watch.service.name: {
                    "pid": None
                    if watch.restart_at is not None or watch.service.process is None
                    else watch.service.process.pid,
                    "restarts": watch.restarts,
                }
                for watch in self.watches
            },
        }
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.status_path.with_suffix(".tmp")
        partial.write_text(json.dumps(status, indent=2) + "\n")
        partial.replace(self.status_path)
