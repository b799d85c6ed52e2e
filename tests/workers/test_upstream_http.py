"""The workers' HTTP client serves every caller: it never sends back a cookie an upstream set."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.workers.upstream_http import upstream_client


@pytest.fixture
async def cookie_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """An HTTP server that sets a cookie on every answer and keeps each request's head."""
    heads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            heads.append(head)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Set-Cookie: session=caller-one; Path=/\r\nContent-Length: 2\r\n\r\n{}"
            )
            await writer.drain()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await answer(reader, writer)
        except asyncio.IncompleteReadError:  # the client closed its connection
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", heads
    finally:
        server.close()
        await server.wait_closed()


async def test_a_cookie_an_upstream_sets_is_never_sent_again(
    cookie_server: tuple[str, list[bytes]],
) -> None:
    url, heads = cookie_server
    async with upstream_client(connect=5.0, read=5.0, limit=4) as client:
        first = await client.get(f"{url}/one")
        assert first.headers["set-cookie"].startswith("session=caller-one")
        await client.get(f"{url}/two")
        assert len(client.cookies) == 0
    assert len(heads) == 2
    assert all(b"cookie:" not in head.lower() for head in heads)
