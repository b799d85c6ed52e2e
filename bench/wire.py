"""A minimal HTTP/1.1 keep-alive client for the load: one connection per caller, no pool.

httpx's pool bookkeeping costs the load generator several ms of CPU per request at 64 in flight
on this 2-core box (see the `load generator` column), which starves the processes under test.
This client sends a fixed request over a connection it owns and parses only what it needs.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    request: bytes  # the whole request, sent as is every time

    @classmethod
    def post(cls, url: str, headers: dict[str, str], body: bytes) -> "Endpoint":
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        lines = [f"POST {parts.path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"Content-Length: {len(body)}", "", ""]
        return cls(host, port, "\r\n".join(lines).encode() + body)


class Connection:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.endpoint.host, self.endpoint.port)
        return self._streams

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def send(self) -> tuple[int, AsyncIterator[bytes]]:
        """Send the request; the status and the body's pieces as they arrive. The body must be
        read to its end before the next `send`."""
        reader, writer = await self._open()
        writer.write(self.endpoint.request)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"connection", b"").lower() == b"close":
            # Read to the end, then reconnect for the next request.
            self._streams = None
            return status, _until_eof(reader, writer)
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            return status, _chunked(reader)
        return status, _sized(reader, int(headers.get(b"content-length", b"0")))


async def _sized(reader: asyncio.StreamReader, length: int) -> AsyncIterator[bytes]:
    if length:
        yield await reader.readexactly(length)


async def _chunked(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers from our servers
            return
        data = await reader.readexactly(size + 2)
        yield data[:-2]


async def _until_eof(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> AsyncIterator[bytes]:
    try:
        while data := await reader.read(65536):
            yield data
    finally:
        writer.close()
