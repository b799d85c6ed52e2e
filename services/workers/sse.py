"""Tolerant Server-Sent Events parsing for upstream provider streams (docs/providers.md §0)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    event: str | None
    data: str


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    """Events from the lines of a stream: comments skipped, `data:` lines joined, JSON padding
    stripped; an event is emitted at each blank line and at end of stream."""
    event: str | None = None
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(event, "\n".join(data).strip())
            event, data = None, []
        elif line.startswith(":"):
            continue
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line.startswith("event:"):
            event = line[6:].strip()
    if data:
        yield SseEvent(event, "\n".join(data).strip())
