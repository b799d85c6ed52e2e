"""`POST /api/v1/embeddings` and `POST /api/v1/rerank` through the provider's worker pool."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from services.edge import caps
from services.edge.audit import note
from services.edge.auth import Principal, authenticated
from services.edge.catalogue import catalogue_of
from services.edge.jobs import JobQueue
from services.edge.limits import check_access, estimate_text_tokens, gate_of
from shared.errors import GatewayError, ValidationError
from shared.http import trace_id
from shared.messages import EmbeddingsJob, EmbeddingsResult, RerankJob, RerankResultEvent
from shared.providers import PROVIDERS, Capability
from shared.schemas import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    RerankRequest,
    RerankResponse,
    RerankResult,
)

router = APIRouter(tags=["retrieval"])


async def check_capable(
    request: Request, provider: str, model: str, capability: Capability
) -> None:
    if not PROVIDERS[provider].can(capability):
        able = sorted(p.id for p in PROVIDERS.values() if p.can(capability))
        raise ValidationError(
            f"Provider '{provider}' does not offer {capability}",
            details={"provider": provider, "capability": capability, "available_providers": able},
        )
    await catalogue_of(request).check(provider, model, capability)


async def embed(request: Request, body: EmbeddingsRequest, caller: Principal) -> EmbeddingsResult:
    """One vector per input text, in input order (every embeddings surface goes through here)."""
    note(request, provider=body.provider, model=body.model)
    gate = gate_of(request)
    caps.check_embeddings(gate.settings, body)
    check_access(caller, body.provider, body.model)
    await check_capable(request, body.provider, body.model, "embeddings")
    held = await gate.admit(request, caller, estimate_text_tokens(body.texts()))
    queue: JobQueue = request.app.state.jobs
    fields = queue.job_fields(user_id=caller.user_id, trace=trace_id(request))
    note(request, job_id=fields["id"])
    event = await queue.call(EmbeddingsJob(**fields, request=body), body.provider, held)
    if not isinstance(event, EmbeddingsResult):
        raise GatewayError(f"Unexpected reply to an embeddings job: {event.kind}")
    note(request, usage=event.usage)
    if len(event.vectors) != len(body.texts()):
        raise GatewayError("The provider returned a different number of vectors than inputs")
    return event


async def rerank(request: Request, body: RerankRequest, caller: Principal) -> list[RerankResult]:
    """Results best first, at most `top_n`, each index checked and its document attached."""
    note(request, provider=body.provider, model=body.model)
    gate = gate_of(request)
    caps.check_rerank(gate.settings, body)
    check_access(caller, body.provider, body.model)
    await check_capable(request, body.provider, body.model, "rerank")
    estimate = estimate_text_tokens([body.query, *body.documents])
    held = await gate.admit(request, caller, estimate)
    queue: JobQueue = request.app.state.jobs
    fields = queue.job_fields(user_id=caller.user_id, trace=trace_id(request))
    note(request, job_id=fields["id"])
    event = await queue.call(RerankJob(**fields, request=body), body.provider, held)
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
    body: EmbeddingsRequest, request: Request, caller: Annotated[Principal, Depends(authenticated)]
) -> EmbeddingsResponse:
    result = await embed(request, body, caller)
    usage = result.usage
    return EmbeddingsResponse(
        embeddings=result.vectors[0] if isinstance(body.input, str) else result.vectors,
        model=result.model,
        usage={"total_tokens": usage.total_tokens or usage.prompt_tokens},
    )


@router.post("/api/v1/rerank", response_model=RerankResponse, response_model_exclude_none=True)
async def rerank_route(
    body: RerankRequest, request: Request, caller: Annotated[Principal, Depends(authenticated)]
) -> RerankResponse:
    return RerankResponse(results=await rerank(request, body, caller))
