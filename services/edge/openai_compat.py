"""The OpenAI-compatible surface: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`.

Any OpenAI SDK works unchanged with `base_url=<edge>/v1` and a gateway token as its API key.
`model` is written `provider/model` (split on the first `/`). Requests are translated to the
native bodies and go the same ways as `/api/v1/chat` (`chat.answer_chat`) and
`/api/v1/embeddings` (`retrieval.embed`).
"""

import base64
import struct
import time
from typing import Any

import pydantic
from fastapi import APIRouter, Request, Response

from services.edge.chat import answer_chat
from services.edge.deps import AdmittedCallerDep, CallerDep, Components, ComponentsDep
from services.edge.openai_encoder import OpenAIEncoder
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
from services.edge.retrieval import embed
from shared.errors import InvalidRequest
from shared.identifiers import quoted
from shared.schemas import ChatRequest, EmbeddingsRequest

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

# Fields OpenAI accepts that would change the answer in ways no provider here honours.
_REJECTED_EXTRAS = ("functions", "function_call", "audio", "prediction", "logit_bias")


def split_model(model: str) -> tuple[str, str]:
    provider, _, name = model.partition("/")
    if not provider or not name:
        raise InvalidRequest(
            "model must be written provider/model, e.g. deepseek/deepseek-chat",
            details={"model": quoted(model)},
        )
    return provider, name


def _invalid(exc: pydantic.ValidationError) -> InvalidRequest:
    errors = [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return InvalidRequest(
        f"Invalid field '{first['field']}': {first['message']}", details={"errors": errors}
    )


def _refuse_unsupported(body: OpenAIChatRequest) -> None:
    refused = [name for name in _REJECTED_EXTRAS if (body.model_extra or {}).get(name)]
    if body.n not in (None, 1):
        refused.append("n")
    if body.logprobs or body.top_logprobs:
        refused.append("logprobs")
    if body.response_format and body.response_format.get("type") != "text":
        refused.append("response_format")
    if refused:
        raise InvalidRequest(
            f"Unsupported field '{refused[0]}'", details={"unsupported_fields": refused}
        )


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    translated = []
    for index, tool in enumerate(tools):
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise InvalidRequest("Only function tools are supported", details={"tool": index})
        keep = ("name", "description", "parameters")  # `strict` has no counterpart
        translated.append(
            {"type": "function", "function": {k: function[k] for k in keep if k in function}}
        )
    return translated


def chat_request(body: OpenAIChatRequest) -> ChatRequest:
    """The native request an OpenAI chat completion request stands for."""
    _refuse_unsupported(body)
    provider, model = split_model(body.model)
    kept = {
        "role",
        "content",
        "name",
        "tool_calls",
        "tool_call_id",
        "reasoning_content",
        "reasoning_details",
    }
    messages = [
        m.model_dump(include=kept, exclude_none=True)
        | {"role": "system" if m.role == "developer" else m.role}
        for m in body.messages
    ]
    fields: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "messages": messages,
        "max_tokens": body.max_completion_tokens or body.max_tokens,
        "tools": _tools(body.tools) if body.tools else None,
        "stream": bool(body.stream),
        **body.model_dump(
            include={
                "temperature",
                "top_p",
                "frequency_penalty",
                "presence_penalty",
                "stop",
                "tool_choice",
                "parallel_tool_calls",
                "reasoning_effort",
                "thinking",
            }
        ),
    }
    try:
        return ChatRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    except pydantic.ValidationError as exc:
        raise _invalid(exc) from None


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat_completions(
    body: OpenAIChatRequest, request: Request, caller: CallerDep
) -> Response:
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
        raise _invalid(exc) from None
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


@router.get("/models", response_model=ModelList)
async def models(_caller: AdmittedCallerDep, edge: ComponentsDep) -> ModelList:
    return ModelList(data=await _cards(edge))


@router.get("/models/{model_id:path}", response_model=ModelCard)
async def model(model_id: str, _caller: AdmittedCallerDep, edge: ComponentsDep) -> ModelCard:
    for card in await _cards(edge):
        if card.id == model_id:
            return card
    raise InvalidRequest(f"The model '{quoted(model_id)}' does not exist", status=404)
