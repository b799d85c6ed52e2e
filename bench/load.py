"""Closed-loop load: `concurrency` callers sending a fixed number of requests over keep-alive."""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

from bench.wire import Connection, Endpoint


@dataclass(frozen=True)
class Target:
    name: str  # "direct" or "gateway"
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.post(self.url, self.headers, self.body)


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    first_tokens: list[float] = field(default_factory=list)  # streams: to the first content
    events: list[int] = field(default_factory=list)  # streams: SSE events with content
    text: list[int] = field(default_factory=list)  # streams: characters of content received
    errors: Counter[str] = field(default_factory=Counter)  # HTTP status or exception name
    error_bodies: dict[str, bytes] = field(default_factory=dict)  # the first of each status
    elapsed: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors.total()

    def extend(self, other: "Samples") -> None:
        self.latencies += other.latencies
        self.first_tokens += other.first_tokens
        self.events += other.events
        self.text += other.text
        self.errors += other.errors
        self.error_bodies = {**other.error_bodies, **self.error_bodies}
        self.elapsed += other.elapsed


def chat_body(
    latency_ms: int, tokens: int, stream: bool, provider: str | None, chunk_delay_ms: int = 0
) -> bytes:
    """The same chat for both targets; the simulator reads its behaviour from the directive."""
    directive = f"latency_ms={latency_ms} tokens={tokens} chunk_delay_ms={chunk_delay_ms}"
    body: dict[str, Any] = {
        "model": "deepseek-chat",
        "messages": [{"role": "user", "content": f"Hi [[sim {directive}]]"}],
        "stream": stream,
    }
    if provider is not None:
        body["provider"] = provider
    return orjson.dumps(body)


def _content(event: Any) -> str:
    """Delta text of an SSE event: the gateway's `{"delta": ...}` or OpenAI's `choices`."""
    if not isinstance(event, dict):
        return ""
    delta = event.get("delta")
    if delta is None and event.get("choices"):
        delta = event["choices"][0].get("delta")
    text = delta.get("content") if isinstance(delta, dict) else None
    return text if isinstance(text, str) else ""


class _Stream:
    """Reads SSE `data:` lines from body pieces, noting the time to the first content."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.first: float | None = None
        self.events = self.text = 0
        self.failed = False
        self._rest = b""

    def feed(self, piece: bytes) -> None:
        *lines, self._rest = (self._rest + piece).split(b"\n")
        for line in lines:
            if not line.startswith(b"data:") or line.rstrip().endswith(b"[DONE]"):
                continue
            event = orjson.loads(line[5:])
            if isinstance(event, dict) and "error" in event:
                self.failed = True
            elif content := _content(event):
                self.events += 1
                self.text += len(content)
                if self.first is None:
                    self.first = time.perf_counter() - self.start

    def done(self, samples: Samples) -> None:
        if self.failed:
            samples.errors["error event"] += 1
            return
        samples.latencies.append(time.perf_counter() - self.start)
        samples.first_tokens.append(self.first if self.first is not None else samples.latencies[-1])
        samples.events.append(self.events)
        samples.text.append(self.text)


async def _drain(
    status: int, body: AsyncIterator[bytes], start: float, stream: bool, samples: Samples
) -> None:
    if status != 200:
        text = b"".join([piece async for piece in body])
        samples.errors[str(status)] += 1
        samples.error_bodies.setdefault(str(status), text[:400])
        return
    if not stream:
        async for _ in body:
            pass
        samples.latencies.append(time.perf_counter() - start)
        return
    reader = _Stream(start)
    async for piece in body:
        reader.feed(piece)
    reader.done(samples)


class _Sender(Protocol):
    async def send(self, samples: Samples) -> None: ...

    def close(self) -> None: ...


class _RawSender:
    def __init__(self, target: Target, stream: bool) -> None:
        self.connection = Connection(target.endpoint)
        self.stream = stream

    async def send(self, samples: Samples) -> None:
        start = time.perf_counter()
        try:
            status, body = await self.connection.send()
            await _drain(status, body, start, self.stream, samples)
        except Exception:
            self.connection.close()  # a half-read response leaves the connection unusable
            raise

    def close(self) -> None:
        self.connection.close()


class _HttpxSender:
    def __init__(self, client: httpx.AsyncClient, target: Target, stream: bool) -> None:
        self.client, self.target, self.stream = client, target, stream

    async def send(self, samples: Samples) -> None:
        start = time.perf_counter()
        target = self.target
        async with self.client.stream(
            "POST", target.url, content=target.body, headers=target.headers
        ) as response:
            await _drain(response.status_code, response.aiter_bytes(), start, self.stream, samples)

    def close(self) -> None:
        pass


async def run(
    client: httpx.AsyncClient | None,
    target: Target,
    *,
    concurrency: int,
    requests: int,
    stream: bool,
) -> Samples:
    """With `client` None, each caller uses its own raw keep-alive connection (`bench.wire`)."""
    samples = Samples()
    tickets = iter(range(requests))  # shared: each caller takes the next until none are left

    async def caller() -> None:
        sender: _Sender = (
            _RawSender(target, stream) if client is None else _HttpxSender(client, target, stream)
        )
        try:
            for _ in tickets:
                try:
                    await sender.send(samples)
                except (OSError, httpx.HTTPError, asyncio.IncompleteReadError, ValueError) as e:
                    samples.errors[type(e).__name__] += 1
        finally:
            sender.close()

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    samples.elapsed = time.perf_counter() - start
    return samples
