"""Operators' views, for admins only: `GET /api/v1/admin/providers` and finding users.

Per provider: jobs waiting and taken (its stream), live workers (heartbeats), the circuit
breaker and the dead letters, read in one pipelined Redis round trip; and the error rate and
latency of its recent requests, from the audit log (the audit service's own query), so nothing
is added to the request path.
"""

import asyncio
import logging
import time
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Depends, Query, Request, Response
from redis.exceptions import RedisError

from services.edge.auth import Principal
from services.edge.deps import AdmittedCallerDep, CallerDep, components
from services.edge.observability import BREAKER_STATES, HALF_OPEN, OPEN, queue_in, queue_of
from services.edge.proxy import forward
from shared.errors import AuthenticationError, AuthorizationError, ServiceUnavailable
from shared.http import trace_id
from shared.providers import PROVIDERS
from shared.redis_client import clock_ms, queue_clock
from shared.redis_keys import RedisKeys

log = logging.getLogger(__name__)

router = APIRouter(tags=["admin"])

_STATE_NAMES = {value: name.decode() for name, value in BREAKER_STATES.items()}


async def admin(request: Request, caller: CallerDep) -> Principal:
    """An admin with a login token. The token's role claim turns others away at once; the auth
    service then confirms the role from its database and that the token is not revoked, so a
    demotion or a sign-out applies at once here too. These routes are not counted in the
    admin's request window: a dashboard polling them must not lock its operator out."""
    if caller.key_id is not None:
        raise AuthenticationError("Admin routes take a login token, not an API key")
    if caller.role != "admin":
        raise AuthorizationError("Admin role required")
    client: httpx.AsyncClient = components(request).internal.auth
    headers = {
        "authorization": request.headers.get("authorization", ""),
        "x-request-id": trace_id(request),
    }
    try:
        answer = await client.get(f"/api/v1/admin/users/{caller.user_id}", headers=headers)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable("The auth service is unavailable") from exc
    if answer.status_code in (401, 404):
        raise AuthenticationError("Token no longer valid")
    if answer.status_code == 403:
        raise AuthorizationError("Admin role required")
    if answer.status_code != 200:
        raise ServiceUnavailable("The auth service could not check the caller's role")
    return caller


AdminDep = Annotated[Principal, Depends(admin)]


def breaker_view(fields: object, now_ms: int) -> dict[str, Any]:
    """The breaker hash's `st` and `until` as `{state, retry_after}` (as `Breaker.status`)."""
    state, until = fields if isinstance(fields, list) and len(fields) == 2 else (None, None)
    value = BREAKER_STATES.get(state or b"closed", 0.0)
    left = 0.0
    if value == OPEN and until is not None:
        left = max(0.0, (float(until) - now_ms) / 1000)
        if left == 0.0:
            value = HALF_OPEN
    return {"state": _STATE_NAMES[value], "retry_after": round(left, 1)}


async def queue_view(request: Request, within: float) -> dict[str, dict[str, Any]]:
    """Each provider's queue, workers, breaker and dead letters from Redis."""
    keys: RedisKeys = components(request).keys
    providers = list(PROVIDERS)
    since_ms = int((time.time() - within) * 1000)
    try:
        async with components(request).redis.pipeline(transaction=False) as pipe:
            for provider in providers:
                queue_in(pipe, keys, provider)
                pipe.zcount(keys.heartbeat(provider), since_ms, "+inf")
                pipe.hmget(keys.breaker(provider), ["st", "until"])
                pipe.xlen(keys.dead_letters(provider))
            queue_clock(pipe)
            answers = await pipe.execute(raise_on_error=False)
    except RedisError as exc:
        raise ServiceUnavailable("The gateway's Redis is unavailable") from exc
    now_ms = clock_ms(pipe, answers)
    view = {}
    per = 2 * keys.shards + 3
    for index, provider in enumerate(providers):
        *queue, alive, breaker, dead = answers[per * index : per * index + per]
        depth, pending = queue_of(queue)
        view[provider] = {
            "id": provider,
            "name": PROVIDERS[provider].name,
            "queue_depth": depth,
            "pending": pending,
            "workers_alive": alive if isinstance(alive, int) else 0,
            "breaker": breaker_view(breaker, now_ms),
            "dead_letters": dead if isinstance(dead, int) else 0,
        }
    return view


async def recent_stats(request: Request, minutes: int) -> dict[str, Any] | None:
    """Per provider: requests, 5xx errors and latency in the last `minutes`, from the audit
    service (with the admin's own token); None when it cannot answer."""
    client: httpx.AsyncClient = components(request).internal.audit
    headers = {
        "authorization": request.headers.get("authorization", ""),
        "x-request-id": trace_id(request),
    }
    try:
        answer = await client.get(
            "/api/v1/admin/provider-stats", params={"minutes": minutes}, headers=headers
        )
    except httpx.HTTPError:
        log.warning("the audit service did not answer for provider statistics")
        return None
    if answer.status_code != 200:
        log.warning("the audit service answered %d for provider statistics", answer.status_code)
        return None
    stats: dict[str, Any] = answer.json()["providers"]
    return stats


@router.get("/api/v1/admin/providers")
async def providers(
    request: Request,
    caller: AdminDep,
    minutes: Annotated[int, Query(ge=1, le=60)] = 5,
) -> dict[str, Any]:
    """Admins only: each provider's queue depth, jobs taken and not finished, live workers,
    circuit breaker, dead letters, and its error rate and latency over the last `minutes`."""
    within = 3 * components(request).settings.heartbeat_interval.seconds
    queues, stats = await asyncio.gather(
        queue_view(request, within), recent_stats(request, minutes)
    )
    for provider, view in queues.items():
        view["recent"] = None if stats is None else stats.get(provider, empty_stats())
    return {"window_minutes": minutes, "providers": list(queues.values())}


@router.get("/api/v1/admin/users")
async def find_users(
    request: Request,
    caller: AdmittedCallerDep,
    q: Annotated[str, Query(min_length=1, max_length=254)],
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> Response:
    """Admins only: users whose id is `q`, or whose email or name contains it."""
    query = urlencode({"q": q, "limit": limit})
    return await forward(request, "auth", f"/api/v1/admin/users?{query}")


def empty_stats() -> dict[str, Any]:
    return {"requests": 0, "errors": 0, "error_rate": None, "latency_ms": None}
