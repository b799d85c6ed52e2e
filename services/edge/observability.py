"""`GET /metrics` of the edge: request families plus, read at scrape, each provider's queue depth
and circuit-breaker state, and the gateway API keys that spent most today."""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from services.edge.deps import ComponentsDep
from shared.metrics import Snapshot, exposition
from shared.providers import PROVIDERS
from shared.redis_client import clock_ms, queue_clock
from shared.redis_keys import WORKER_GROUP, RedisKeys

router = APIRouter()


# gateway_breaker_state values
CLOSED, HALF_OPEN, OPEN = 0.0, 1.0, 2.0
# Keys in the top-spenders gauge: a label set bounded whatever the number of keys.
TOP_KEYS = 10
BREAKER_STATES = {b"closed": CLOSED, b"half_open": HALF_OPEN, b"open": OPEN}


def breaker_value(fields: object, now_ms: int) -> float:
    """The breaker hash's `st` and `until` as the gauge's value. An open breaker whose cooldown
    has passed reads as half-open, as `Breaker.status` says: its next call is a probe."""
    if not isinstance(fields, list) or len(fields) != 2:
        return CLOSED
    state, until = fields
    value = BREAKER_STATES.get(state or b"closed", CLOSED)
    if value == OPEN and until is not None and now_ms >= float(until):
        return HALF_OPEN
    return value


def queue_in(pipe: Pipeline, keys: RedisKeys, provider: str) -> None:
    """Queues the length and the pending summary of each shard of the provider's queue."""
    for stream in keys.job_shards(provider):
        pipe.xlen(stream)
        pipe.xpending(stream, WORKER_GROUP)


def queue_of(answers: list[Any]) -> tuple[int, int]:
    """Jobs waiting and jobs taken by a worker over every shard, from `queue_in`'s answers
    (a shard that failed to answer counts none)."""
    lengths, summaries = answers[0::2], answers[1::2]
    waiting = sum(n for n in lengths if isinstance(n, int))
    taken = sum(int(s["pending"]) for s in summaries if isinstance(s, dict))
    return waiting, taken


async def queue_snapshot(redis: Redis, keys: RedisKeys) -> Snapshot:
    """Jobs waiting and in flight, and the breaker's state, per provider, and today's top
    spending keys, in one pipelined round trip."""
    snapshot = Snapshot()
    providers = list(PROVIDERS)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for provider in providers:
                queue_in(pipe, keys, provider)
                pipe.hmget(keys.breaker(provider), ["st", "until"])
            today = datetime.now(UTC).date().isoformat()
            pipe.zrevrange(keys.key_spend(today), 0, TOP_KEYS - 1, withscores=True)
            queue_clock(pipe)
            answers = await pipe.execute(raise_on_error=False)
    except RedisError:
        return snapshot
    now_ms = clock_ms(pipe, answers)
    depth: dict[tuple[str, ...], float] = {}
    pending: dict[tuple[str, ...], float] = {}
    breaker: dict[tuple[str, ...], float] = {}
    per = 2 * keys.shards + 1
    for index, provider in enumerate(providers):
        *queue, state = answers[per * index : per * index + per]
        waiting, taken = queue_of(queue)
        depth[(provider,)], pending[(provider,)] = float(waiting), float(taken)
        breaker[(provider,)] = breaker_value(state, now_ms)
    snapshot.set("gateway_queue_depth", "Jobs on a provider's stream", ["provider"], depth)
    snapshot.set(
        "gateway_queue_pending",
        "Jobs taken by a worker and not yet finished",
        ["provider"],
        pending,
    )
    top = answers[-1] if isinstance(answers[-1], list) else []
    snapshot.set(
        "gateway_key_spend_today_usd",
        f"USD spent today (UTC) by the {TOP_KEYS} gateway API keys that spent most",
        ["key_id"],
        {(key.decode(),): float(spent) for key, spent in top},
    )
    snapshot.set(
        "gateway_breaker_state",
        "Circuit breaker per provider: 0 closed, 1 half-open (probing), 2 open",
        ["provider"],
        breaker,
    )
    return snapshot


@router.get("/metrics", include_in_schema=False)
async def metrics(edge: ComponentsDep) -> Response:
    if not edge.settings.enable_metrics:
        return Response(status_code=404)
    snapshot = await queue_snapshot(edge.redis, edge.keys)
    body, content_type = exposition(edge.registry, snapshot)
    return Response(body, media_type=content_type)
