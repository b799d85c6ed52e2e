"""The OpenAI-compatible surface: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`.

Any OpenAI SDK works unchanged with `base_url=<edge>/v1` and a gateway token as its API key.
`model` is written `provider/model` (split on the first `/`). Requests are translated to the
native bodies (`openai_translate`) and go the same ways as `/api/v1/chat` (`chat.answer_chat`)
and `/api/v1/embeddings` (`retrieval.embed`); errors are answered in OpenAI's shape
(`openai_errors`). `GET /v1/models` also takes the Anthropic SDK's `x-api-key` and answers in
Anthropic's shape when the caller sends `anthropic-version`.
"""

import base64
import struct
import time
from typing import Annotated, Any

import orjson
import pydantic
from fastapi import APIRouter, Query, Request, Response

from services.edge.chat import answer_chat
from services.edge.deps import AnyAdmittedCallerDep, CallerDep, Components, components
from services.edge.openai_encoder import OpenAIEncoder
from services.edge.openai_errors import OpenAIRoute
from services.edge.openai_schemas import (
    ChatCompletion,
    EmbeddingItem,
    EmbeddingList,
    EmbeddingsUsage,
    ModelCard,
    ModelList,
    OpenAIChatRequest,
    OpenAIEmbeddingsRequest,
)
from services.edge.openai_translate import (
    chat_request,
    invalid,
    refuse_or_drop,
    split_model,
    unhonoured,
)
from services.edge.precheck import drops_params, note_dropped
from services.edge.retrieval import embed
from shared.errors import MODEL_NOT_FOUND, InvalidRequest
from shared.identifiers import quoted
from shared.schemas import EmbeddingsRequest

router = APIRouter(prefix="/v1", tags=["openai-compatible"], route_class=OpenAIRoute)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat_completions(
    body: OpenAIChatRequest, request: Request, caller: CallerDep
) -> Response:
    drop = drops_params(components(request).settings, request, body.drop_params)
    note_dropped(request, refuse_or_drop(unhonoured(body), drop))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return await answer_chat(
        request,
        chat_request(body),
        caller,
        lambda job_id: OpenAIEncoder(
            f"chatcmpl-{job_id}", int(time.time()), body.model, include_usage
        ),
    )


def _encoded(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


@router.post("/embeddings", response_model=EmbeddingList)
async def embeddings(
    body: OpenAIEmbeddingsRequest, request: Request, caller: CallerDep
) -> EmbeddingList:
    provider, model = split_model(body.model)
    if not isinstance(body.input, str) and any(not isinstance(i, str) for i in body.input):
        raise InvalidRequest("Token arrays are not supported; send text", details={})
    fields = body.model_dump(include={"input", "dimensions", "input_type", "truncate"})
    try:
        native = EmbeddingsRequest.model_validate(
            {k: v for k, v in fields.items() if v is not None}
            | {"provider": provider, "model": model}
        )
    except pydantic.ValidationError as exc:
        raise invalid(exc) from None
    result = await embed(request, native, caller)
    tokens = result.usage.prompt_tokens or result.usage.total_tokens
    return EmbeddingList(
        data=[
            EmbeddingItem(index=i, embedding=_encoded(v, body.encoding_format))
            for i, v in enumerate(result.vectors)
        ],
        model=body.model,
        usage=EmbeddingsUsage(
            prompt_tokens=tokens, total_tokens=result.usage.total_tokens or tokens
        ),
    )


async def _cards(edge: Components) -> list[ModelCard]:
    listing = await edge.catalogue.listing()
    return [ModelCard(id=f"{p.id}/{m}", owned_by=p.id) for p in listing.providers for m in p.models]


def _anthropic_card(card: ModelCard) -> dict[str, Any]:
    """A model in Anthropic's list shape (its creation date unknown: the epoch)."""
    return {
        "type": "model",
        "id": card.id,
        "display_name": card.id,
        "created_at": "1970-01-01T00:00:00Z",
    }


def _anthropic_page(
    cards: list[ModelCard], limit: int, after_id: str | None, before_id: str | None
) -> dict[str, Any]:
    """One page of Anthropic's `GET /v1/models`: `limit` models after `after_id` (or before
    `before_id`), with `has_more`, `first_id` and `last_id`."""
    ids = [card.id for card in cards]
    start, end = 0, len(cards)
    if after_id is not None:
        start = ids.index(after_id) + 1 if after_id in ids else len(cards)
    if before_id is not None:
        end = ids.index(before_id) if before_id in ids else 0
        start = max(start, end - limit)
    page = cards[start : min(end, start + limit)]
    data = [_anthropic_card(card) for card in page]
    more = start + len(page) < end if before_id is None else start > 0
    return {
        "data": data,
        "has_more": more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


@router.get("/models", response_model=ModelList)
async def models(
    request: Request,
    _caller: AnyAdmittedCallerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    after_id: Annotated[str | None, Query(max_length=300)] = None,
    before_id: Annotated[str | None, Query(max_length=300)] = None,
) -> Any:
    """OpenAI's model list; Anthropic's, paged, for callers that send `anthropic-version`."""
    cards = await _cards(components(request))
    if request.headers.get("anthropic-version"):
        page = _anthropic_page(cards, limit, after_id, before_id)
        return Response(orjson.dumps(page), media_type="application/json")
    return ModelList(data=cards)


@router.get("/models/{model_id:path}", response_model=ModelCard)
async def model(model_id: str, request: Request, _caller: AnyAdmittedCallerDep) -> Any:
    for card in await _cards(components(request)):
        if card.id == model_id:
            if request.headers.get("anthropic-version"):
                return Response(orjson.dumps(_anthropic_card(card)), media_type="application/json")
            return card
    raise InvalidRequest(
        f"The model '{quoted(model_id)}' does not exist",
        details={"model": quoted(model_id), "code": MODEL_NOT_FOUND},
    )
