"""200 streams open at once through one edge: every delta arrives, once and in order.

Ten users each hold 20 streams (the default `MAX_OPEN_STREAMS`), spread over four providers'
worker pools. Every stream reads its first event, then waits until all 200 have one, so they
are all open together while the workers keep publishing; each stream's text is then compared
with what the simulator sent for it.
"""

import asyncio

import httpx

from services.fleet.plan import FleetConfig
from tests.e2e.helpers import auth, chat_body, new_trace, register, sse_payloads, upstream_record

USERS = 10
STREAMS_PER_USER = 20
TARGETS = [
    ("deepseek", "deepseek-chat"),
    ("anthropic", "claude-sonnet-4-20250514"),
    ("xai", "grok-3"),
    ("openrouter", "openai/gpt-4o-mini"),
]
PROMPT = "Count slowly [[sim tokens=60 chunk_delay_ms=5]]"


async def one_stream(
    client: httpx.AsyncClient, token: str, provider: str, model: str, all_open: asyncio.Barrier
) -> tuple[str, str]:
    """(trace, the streamed text) of one stream held open until every stream is."""
    trace = new_trace()
    body = chat_body(provider, model, PROMPT, stream=True)
    async with client.stream(
        "POST", "/api/v1/chat", json=body, headers=auth(token, trace)
    ) as response:
        assert response.status_code == 200, await response.aread()
        chunks = response.aiter_text()
        received = await anext(chunks)
        await all_open.wait()
        async for chunk in chunks:
            received += chunk
    payloads = sse_payloads(received)
    assert payloads[-1] == "[DONE]", payloads[-3:]
    *deltas, final = payloads[:-1]
    assert isinstance(final, dict) and final["finish_reason"] == "stop", final
    text = "".join(d["delta"].get("content", "") for d in deltas if isinstance(d, dict))
    return trace, text


async def test_200_concurrent_streams_lose_and_reorder_nothing(fleet: FleetConfig) -> None:
    streams = USERS * STREAMS_PER_USER
    limits = httpx.Limits(max_connections=streams + 10)
    async with (
        httpx.AsyncClient(base_url=fleet.edge_url, timeout=60.0, limits=limits) as client,
        httpx.AsyncClient(base_url=str(fleet.simulator_url), timeout=10.0) as simulator,
    ):
        tokens = [await register(client) for _ in range(USERS)]
        all_open = asyncio.Barrier(streams)
        async with asyncio.timeout(120):
            results = await asyncio.gather(
                *(
                    one_stream(client, token, *TARGETS[i % len(TARGETS)], all_open)
                    for token in tokens
                    for i in range(STREAMS_PER_USER)
                )
            )
        for trace, text in results:
            record = await upstream_record(simulator, trace)
            assert text == record["reply"], trace
            assert len(record["reply"].split()) == 60
