"""Response cache for deterministic chat: non-streaming requests with `temperature` 0.

The key is a SHA-256 of the caller's user id and the whole normalised request (provider,
model, messages, tools and every parameter, as JSON with sorted keys), so one user never
receives another's answer. The client may skip the lookup with `Cache-Control: no-cache` (the
fresh answer is stored) or skip the cache entirely with `no-store`. Answers say `X-Cache: HIT`,
`MISS` or `BYPASS`; requests that may not be cached get no such header. Redis trouble makes a
lookup a miss and a store a no-op: the cache never fails a request.
"""

import hashlib
import logging
from dataclasses import dataclass
from typing import Literal

import orjson
from fastapi import Request
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.edge.audit import note
from shared.http import add_response_headers
from shared.messages import DoneEvent
from shared.redis_keys import RedisKeys
from shared.schemas import ChatRequest

log = logging.getLogger(__name__)

Mode = Literal["use", "refresh", "skip"]


@dataclass(frozen=True)
class CachedAnswer:
    job_id: str  # the job that produced the answer (OpenAI-style ids derive from it)
    done: DoneEvent


def digest(body: ChatRequest, user_id: str) -> str | None:
    """The cache key's digest, or None when the request is not deterministic."""
    if body.stream or body.temperature != 0:
        return None
    normalised = {
        "user_id": user_id,
        "request": body.model_dump(mode="json", exclude_none=True, exclude={"stream"}),
    }
    return hashlib.sha256(orjson.dumps(normalised, option=orjson.OPT_SORT_KEYS)).hexdigest()


def mode_of(request: Request) -> Mode:
    directives = {d.strip().lower() for d in request.headers.get("cache-control", "").split(",")}
    if "no-store" in directives:
        return "skip"
    return "refresh" if "no-cache" in directives else "use"


class ResponseCache:
    def __init__(self, redis: Redis, keys: RedisKeys, ttl_seconds: float) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = max(1, int(ttl_seconds))

    async def get(self, key: str) -> CachedAnswer | None:
        try:
            raw = await self.redis.get(self.keys.response_cache(key))
        except RedisError:
            log.warning("response cache unavailable for a lookup", exc_info=True)
            return None
        if raw is None:
            return None
        try:
            found = orjson.loads(raw)
            return CachedAnswer(found["job_id"], DoneEvent.model_validate(found["done"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("unreadable response cache entry ignored")
            return None

    async def put(self, key: str, answer: CachedAnswer) -> None:
        value = orjson.dumps(
            {"job_id": answer.job_id, "done": answer.done.model_dump(exclude_none=True)}
        )
        try:
            await self.redis.set(self.keys.response_cache(key), value, ex=self.ttl)
        except RedisError:
            log.warning("response cache unavailable for a store", exc_info=True)


@dataclass
class Lookup:
    """One request's use of the cache: the hit, if any, and where a fresh answer goes."""

    cache: ResponseCache
    key: str | None
    hit: CachedAnswer | None = None

    async def store(self, job_id: str, done: DoneEvent) -> None:
        if self.key is not None:
            await self.cache.put(self.key, CachedAnswer(job_id, done))


async def lookup(request: Request, cache: ResponseCache, body: ChatRequest, user_id: str) -> Lookup:
    """Looks the request up, and labels the response (`X-Cache`) and its audit record."""
    key = digest(body, user_id)
    mode = mode_of(request)
    if key is None:
        return Lookup(cache, None)
    if mode != "use":
        add_response_headers(request, {"X-Cache": "BYPASS"})
        note(request, cache="bypass")
        return Lookup(cache, key if mode == "refresh" else None)
    hit = await cache.get(key)
    label: Literal["hit", "miss"] = "hit" if hit is not None else "miss"
    add_response_headers(request, {"X-Cache": label.upper()})
    note(request, cache=label)
    return Lookup(cache, key, hit)
