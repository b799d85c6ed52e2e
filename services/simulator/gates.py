"""Named gates a test opens: `[[sim hold=NAME]]` keeps a chat answer waiting until
`POST /_sim/release/NAME`, so a test decides when an upstream call ends instead of racing a
latency. A held answer goes on by itself after `HOLD_LIMIT_S`, so nothing waits forever."""

import asyncio
import re
from collections import OrderedDict

HOLD_LIMIT_S = 60.0
MAX_GATES = 1000
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Gates:
    def __init__(self) -> None:
        self._opened: OrderedDict[str, asyncio.Event] = OrderedDict()
        self._waiting: dict[str, int] = {}

    def _gate(self, name: str) -> asyncio.Event:
        if name not in self._opened:
            self._opened[name] = asyncio.Event()
            while len(self._opened) > MAX_GATES:
                oldest, _ = self._opened.popitem(last=False)
                self._waiting.pop(oldest, None)
        return self._opened[name]

    async def hold(self, name: str) -> None:
        """Wait until `name` is released (at most `HOLD_LIMIT_S`)."""
        gate = self._gate(name)
        self._waiting[name] = self._waiting.get(name, 0) + 1
        try:
            await asyncio.wait_for(gate.wait(), HOLD_LIMIT_S)
        except TimeoutError:
            pass
        finally:
            self._waiting[name] = self._waiting.get(name, 1) - 1

    def waiting(self, name: str) -> int:
        return self._waiting.get(name, 0)

    def release(self, name: str) -> None:
        """Let every answer held at `name` go on, and the ones that come later too."""
        self._gate(name).set()
