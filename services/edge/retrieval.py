"""`POST /api/v1/embeddings` and `POST /api/v1/rerank` through the provider's worker pool.

Both (and `/v1/embeddings`) take the steps of every job: `precheck`, admission with the
inputs' token estimate, then one job and its one answer (`JobQueue.call`).
"""

from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Request

from services.edge.audit import note, track
from services.edge.auth import Principal
from services.edge.deps import CallerDep, components
from services.edge.limits import estimate_text_tokens
from services.edge.precheck import JobRequest, precheck
from services.edge.spend import cost_headers
from shared.errors import GatewayError
from shared.http import trace_id, traceparent
from shared.messages import (
    EmbeddingsJob,
    EmbeddingsResult,
    Event,
    Job,
    RerankJob,
    RerankResultEvent,
)
from shared.schemas import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    RerankRequest,
    RerankResponse,
    RerankResult,
)

router = APIRouter(tags=["retrieval"])


async def _run(
    request: Request,
    caller: Principal,
    body: JobRequest,
    texts: list[str],
    job: Callable[[dict[str, Any]], Job],
) -> Event:
    """The one answer of the job `job(fields)` makes of `body`, after its checks and admission
    (with the token estimate of `texts` and its worst-case cost); the answer's headers tell
    what it cost."""
    edge = components(request)
    await precheck(edge, request, caller, body)
    tokens = estimate_text_tokens(texts)
    cost = edge.spending.text_worst_case(body.provider, body.model, tokens)
    held = await edge.gate.admit(request, caller, tokens, cost_units=cost)
    fields = edge.jobs.job_fields(
        user_id=caller.user_id, trace=trace_id(request), traceparent=traceparent(request)
    )
    queued = job(fields)
    answer = await edge.jobs.call(
        queued, body.provider, held, track=partial(track, request, queued.id)
    )
    cost_headers(request)
    return answer


async def embed(request: Request, body: EmbeddingsRequest, caller: Principal) -> EmbeddingsResult:
    """One vector per input text, in input order (every embeddings surface goes through here)."""
    event = await _run(
        request, caller, body, body.texts(), lambda fields: EmbeddingsJob(**fields, request=body)
    )
    if not isinstance(event, EmbeddingsResult):
        raise GatewayError(f"Unexpected reply to an embeddings job: {event.kind}")
    note(request, usage=event.usage)
    if len(event.vectors) != len(body.texts()):
        raise GatewayError("The provider returned a different number of vectors than inputs")
    return event


async def rerank(request: Request, body: RerankRequest, caller: Principal) -> list[RerankResult]:
    """Results best first, at most `top_n`, each index checked and its document attached."""
    texts = [body.query, *body.documents]
    event = await _run(
        request, caller, body, texts, lambda fields: RerankJob(**fields, request=body)
    )
    if not isinstance(event, RerankResultEvent):
        raise GatewayError(f"Unexpected reply to a rerank job: {event.kind}")
    if any(not 0 <= r.index < len(body.documents) for r in event.results):
        raise GatewayError("The provider returned a result for a document that does not exist")
    ranked = sorted(event.results, key=lambda r: (-r.relevance_score, r.index))
    if body.top_n is not None:
        ranked = ranked[: body.top_n]
    return [
        RerankResult(
            index=r.index,
            relevance_score=r.relevance_score,
            document=body.documents[r.index] if body.return_documents else None,
        )
        for r in ranked
    ]


@router.post("/api/v1/embeddings", response_model=EmbeddingsResponse)
async def embeddings(
    body: EmbeddingsRequest, request: Request, caller: CallerDep
) -> EmbeddingsResponse:
    result = await embed(request, body, caller)
    usage = result.usage
    return EmbeddingsResponse(
        embeddings=result.vectors[0] if isinstance(body.input, str) else result.vectors,
        model=result.model,
        usage={"total_tokens": usage.total_tokens or usage.prompt_tokens},
    )


@router.post("/api/v1/rerank", response_model=RerankResponse, response_model_exclude_none=True)
async def rerank_route(body: RerankRequest, request: Request, caller: CallerDep) -> RerankResponse:
    return RerankResponse(results=await rerank(request, body, caller))
