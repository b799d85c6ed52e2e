"""What the edge's routes get: the app's components, built once by the lifespan, and the caller.

`components(request)` is the one way to the components (kept on `app.state.edge`); routes that
need nothing else of the request take them as `ComponentsDep`. The caller is a dependency:
`CallerDep` authenticates (routes that run a provider job admit it themselves, with the job's
token estimate), `AnthropicCallerDep` also takes the token as `x-api-key`, and
`AdmittedCallerDep` authenticates and admits (routes that spend no provider tokens;
`AnyAdmittedCallerDep` with either credential). The chat and
retrieval routes depend on the caller alone and read the components with a plain call: on the
hot path every dependency layer costs time.
"""

from dataclasses import dataclass
from typing import Annotated, Literal

import httpx
from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from services.edge.audit import AuditEmitter, note
from services.edge.auth import Authenticator, Principal
from services.edge.cache import ResponseCache
from services.edge.catalogue import Catalogue
from services.edge.job_queue import JobQueue
from services.edge.limits import Gate
from services.edge.readiness import Readiness
from services.edge.spend import Spending
from shared.breaker import Breaker
from shared.logs import user_id_var
from shared.metrics import EdgeMetrics
from shared.redis_keys import RedisKeys
from shared.settings import Settings

InternalService = Literal["auth", "keyvault", "audit"]


@dataclass(frozen=True, slots=True)
class Internal:
    """The internal services the edge calls or forwards to, and its credential for their
    internal routes (`INTERNAL_SERVICE_TOKEN`)."""

    auth: httpx.AsyncClient
    keyvault: httpx.AsyncClient
    audit: httpx.AsyncClient
    token: str

    def client(self, service: InternalService) -> httpx.AsyncClient:
        client: httpx.AsyncClient = getattr(self, service)
        return client


@dataclass(frozen=True, slots=True)
class Components:
    settings: Settings
    redis: Redis
    keys: RedisKeys
    registry: CollectorRegistry
    metrics: EdgeMetrics
    audit: AuditEmitter
    internal: Internal
    authenticator: Authenticator
    gate: Gate
    breaker: Breaker
    jobs: JobQueue
    catalogue: Catalogue
    cache: ResponseCache
    readiness: Readiness
    spending: Spending


def components(request: Request) -> Components:
    edge: Components = request.app.state.edge
    return edge


async def _identify(request: Request, authorization: str | None) -> Principal:
    client = request.client.host if request.client else "unknown"
    caller = await components(request).authenticator.authenticate(authorization, client)
    request.state.caller = caller  # a request refused before admission still counts (refusals)
    user_id_var.set(caller.user_id)
    note(request, user_id=caller.user_id, api_key_id=caller.key_id)
    return caller


async def authenticated(request: Request) -> Principal:
    """The caller, from `Authorization: Bearer <JWT or gateway API key>`."""
    return await _identify(request, request.headers.get("authorization"))


async def authenticated_anthropic(request: Request) -> Principal:
    """Like `authenticated`, also taking the token as `x-api-key` (as the Anthropic SDK does)."""
    authorization = request.headers.get("authorization")
    if not authorization and (api_key := request.headers.get("x-api-key")):
        authorization = f"Bearer {api_key}"
    return await _identify(request, authorization)


CallerDep = Annotated[Principal, Depends(authenticated)]
AnthropicCallerDep = Annotated[Principal, Depends(authenticated_anthropic)]


async def admitted(request: Request, caller: CallerDep) -> Principal:
    """The caller, admitted: for routes that spend no provider tokens."""
    await components(request).gate.admit(request, caller)
    return caller


AdmittedCallerDep = Annotated[Principal, Depends(admitted)]


async def admitted_any(request: Request, caller: AnthropicCallerDep) -> Principal:
    """Like `admitted`, taking the token as a bearer token or as `x-api-key`."""
    await components(request).gate.admit(request, caller)
    return caller


AnyAdmittedCallerDep = Annotated[Principal, Depends(admitted_any)]


async def _components(request: Request) -> Components:
    return components(request)  # a coroutine: FastAPI runs plain functions in a thread pool


ComponentsDep = Annotated[Components, Depends(_components)]
