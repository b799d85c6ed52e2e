"""Small helpers for talking to the running fleet."""

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import jwt
import orjson
import pytest
from redis.asyncio import Redis

from services.fleet.infra import free_port
from services.fleet.plan import FleetConfig, edge_replica
from shared.redis_keys import RedisKeys


@contextlib.contextmanager
def running_edge(fleet: FleetConfig, **settings: str) -> Iterator[str]:
    """One more edge process of the fleet, with `settings` over the fleet's, started and
    healthy: its base URL. It is stopped by its PID, also when the test fails."""
    service = edge_replica(fleet, free_port(), **settings)
    try:
        service.start()
        service.wait_healthy()
        yield str(service.health_url).removesuffix("/health/ready")
    finally:
        service.stop()


def chat_body(provider: str, model: str, text: str, **extra: object) -> dict[str, object]:
    return {
        "provider": provider,
        "model": model,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def auth(token: str, trace: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if trace:
        headers["X-Request-ID"] = trace
    return headers


def new_trace() -> str:
    return f"req_test_{secrets.token_hex(6)}"


async def register(edge: httpx.AsyncClient) -> str:
    """A new account on the edge; its token."""
    response = await edge.post(
        "/api/v1/auth/register",
        json={
            "email": f"user-{secrets.token_hex(6)}@example.com",
            "password": "correct-horse-battery",
            "name": "Test User",
        },
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def upstream_record(simulator: httpx.AsyncClient, trace: str) -> dict[str, Any]:
    """The one POST that reached the provider for `trace` (the edge may also have fetched
    the provider's model list under the same trace)."""
    response = await simulator.get("/_sim/requests", params={"trace_id": trace})
    records = [r for r in response.json()["requests"] if r["method"] == "POST"]
    assert len(records) == 1, records
    record: dict[str, Any] = records[0]
    return record


async def upstream_answer(simulator: httpx.AsyncClient, trace: str) -> Any:
    """What the provider sent for `trace`'s one POST: its JSON body, or the JSON payloads of its
    stream (kept by the simulator once the answer was sent)."""
    answer: Any = None

    async def sent() -> bool:
        nonlocal answer
        answer = (await upstream_record(simulator, trace))["answer"]
        return answer is not None

    await eventually(sent, f"the simulator keeping its answer to {trace}")
    return answer


def last_with(payloads: list[Any], field: str) -> Any:
    """`field` of the last stream payload that has it."""
    return [p[field] for p in payloads if isinstance(p, dict) and field in p][-1]


def expected_usage(provider: str, recorded: dict[str, Any]) -> tuple[int, int]:
    """(prompt, completion) in unified semantics, from the usage the provider reported."""
    if provider == "anthropic":
        prompt = sum(
            recorded.get(k) or 0
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        return prompt, recorded["output_tokens"]
    prompt, completion = recorded["prompt_tokens"], recorded["completion_tokens"]
    if provider == "xai":  # docs/providers.md §3: xAI leaves reasoning out of completion_tokens
        completion += recorded["completion_tokens_details"]["reasoning_tokens"]
    if provider == "perplexity":  # §7: citations and research reasoning are reported apart
        prompt += recorded["citation_tokens"]
        completion += recorded["reasoning_tokens"]
    return prompt, completion


async def eventually(
    condition: Callable[[], Awaitable[bool]], what: str, within: float = 30.0
) -> None:
    """Polls `condition` until it holds; fails saying `what` did not happen within `within` s."""
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {within} s"
        await asyncio.sleep(0.05)


def async_value(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """`check` as the condition `eventually` polls."""

    async def condition() -> bool:
        return check()

    return condition


async def upstream_stream_ended(simulator: httpx.AsyncClient, trace: str) -> dict[str, Any]:
    """The simulator's record of the one streamed POST for `trace`, once that stream stopped
    (sent to its end, or cut by the client)."""
    record: dict[str, Any] = {}

    async def ended() -> bool:
        nonlocal record
        response = await simulator.get("/_sim/requests", params={"trace_id": trace})
        posts = [r for r in response.json()["requests"] if r["method"] == "POST"]
        assert len(posts) <= 1, posts
        record = posts[0] if posts else {}
        return bool(record.get("ended"))

    await eventually(ended, f"the upstream stream of {trace} ending")
    return record


async def held_at(simulator: httpx.AsyncClient, gate: str, count: int) -> None:
    """Waits until `count` answers wait at the simulator's gate (`[[sim hold=gate]]`)."""

    async def holding() -> bool:
        response = await simulator.get(f"/_sim/holds/{gate}")
        waiting: int = response.json()["waiting"]
        assert waiting <= count, f"{waiting} answers wait at {gate}, not {count}"
        return waiting == count

    await eventually(holding, f"{count} answers waiting at {gate}")


async def release(simulator: httpx.AsyncClient, gate: str) -> None:
    response = await simulator.post(f"/_sim/release/{gate}")
    assert response.status_code == 204, response.text


async def budgeted_key(edge: httpx.AsyncClient, token: str) -> tuple[str, tuple[str, ...]]:
    """A new gateway API key with a token budget of its own, and its owner for `settled_to`
    (a key's names carry its user's id)."""
    created = await edge.post(
        "/api/v1/api-keys",
        json={"name": "budgeted", "limits": {"tokens_per_minute": 100_000}},
        headers=auth(token),
    )
    assert created.status_code == 201, created.text
    user_id = jwt.decode(token, options={"verify_signature": False})["sub"]
    return created.json()["key"], ("key", created.json()["id"], user_id)


async def budget_used(redis: Redis, keys: RedisKeys, owner: tuple[str, ...]) -> int:
    value = await redis.hget(keys.token_budget(*owner), "used")
    return int(value or 0)


async def settled_to(redis: Redis, keys: RedisKeys, owner: tuple[str, ...], tokens: int) -> None:
    """Waits for the budget of `owner` (scope, id, and for a key its user's id) to hold
    `tokens` (the edge settles as the request ends)."""

    async def settled() -> bool:
        return await budget_used(redis, keys, owner) == tokens

    await eventually(settled, f"the budget of {owner} settling to {tokens}")


def upstream_usage(record: dict[str, Any]) -> tuple[int, int]:
    """`expected_usage` of a simulator record."""
    return expected_usage(record["provider"], record["usage"])


def sse_payloads(text: str) -> list[object]:
    frames = [f for f in text.split("\n\n") if f]
    assert all(f.startswith("data: ") for f in frames), frames
    return [f[6:] if f[6:] == "[DONE]" else orjson.loads(f[6:]) for f in frames]


def assert_envelope(response: httpx.Response, status: int, error_type: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type
    assert error["message"]
    assert error["trace_id"] == response.headers["x-request-id"]
    assert error["trace_id"].startswith("req_")
    return error


async def entries_added(redis: Redis, stream: str) -> int:
    """How many entries were ever added to `stream` (answered jobs are deleted from it): Redis
    7's `XINFO STREAM` counts them; an older server (the embedded one is 6.2) cannot say."""
    info = await redis.xinfo_stream(stream)
    if "entries-added" not in info:
        pytest.skip("counting a stream's added entries needs Redis 7 (XINFO entries-added)")
    return int(info["entries-added"])
