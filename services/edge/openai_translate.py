"""An OpenAI chat completion request, translated into the native `ChatRequest`.

Every field OpenAI documents for `POST /v1/chat/completions` is either carried (and then held to
the target's rules in `shared.parameters`) or refused here with a 400 naming it: those no
provider behind the gateway honours (legacy `functions`, audio, predicted outputs, logit bias,
...) and any field OpenAI does not define. With `drop_params` they are dropped instead, and
named in `X-Dropped-Params`. Values at their defaults (`n: 1`, `modalities: ["text"]`, an empty
`logit_bias`) change nothing and pass.
"""

from typing import Any

import pydantic

from services.edge.openai_schemas import OpenAIChatRequest
from shared.errors import MODEL_NOT_FOUND, InvalidRequest
from shared.identifiers import names_unknown_provider, quoted
from shared.schemas import ChatRequest

# Carried into the native request under the same name.
_CARRIED = (
    "temperature",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning_effort",
    "thinking",
    "response_format",
    "logprobs",
    "top_logprobs",
    "n",
    "seed",
    "user",
    "metadata",
    "store",
    "service_tier",
    "drop_params",
)
_HANDLED = frozenset(
    {
        *_CARRIED,
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "stream",
        "stream_options",
        "tools",
    }
)
# OpenAI's own fields with no counterpart behind the gateway, and the values that mean
# "nothing asked".
_UNHONOURED: dict[str, tuple[object, ...]] = {
    "functions": (),
    "function_call": (),
    "audio": (),
    "modalities": (["text"],),
    "prediction": (),
    "logit_bias": ({},),
    "web_search_options": (),
    "verbosity": (),
    "prompt_cache_key": (),
    "safety_identifier": (),
}
_MESSAGE_FIELDS = {
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
    "reasoning_content",
    "reasoning_details",
}


def split_model(model: str) -> tuple[str, str]:
    provider, _, name = model.partition("/")
    if not provider or not name:
        raise InvalidRequest(
            "model must be written provider/model, e.g. deepseek/deepseek-chat",
            details={"model": quoted(model), "field": "model"},
        )
    return provider, name


def invalid(exc: pydantic.ValidationError) -> InvalidRequest:
    """The 400 for a request the native schema refuses; an unknown provider makes the model
    one that does not exist (OpenAI's 404)."""
    errors = [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    details: dict[str, Any] = {"field": first["field"], "errors": errors}
    if names_unknown_provider(exc):
        details["code"] = MODEL_NOT_FOUND
    return InvalidRequest(f"Invalid field '{first['field']}': {first['message']}", details=details)


def unhonoured(body: OpenAIChatRequest) -> list[str]:
    """The fields of `body` nothing behind the gateway honours, in the order sent."""
    found = []
    for name, value in (body.model_extra or {}).items():
        if name in _HANDLED:
            continue
        neutral = _UNHONOURED.get(name)
        if neutral is None or (value is not None and value not in neutral):
            found.append(name)
    return found


def refuse_or_drop(names: list[str], drop: bool) -> list[str]:
    """`names` when they may be dropped; else the 400 for the first."""
    if names and not drop:
        raise InvalidRequest(
            f"Unsupported field '{names[0]}': no provider behind the gateway honours it",
            details={"field": names[0], "parameter": names[0], "unsupported_fields": names},
        )
    return names


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    translated = []
    for index, tool in enumerate(tools):
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise InvalidRequest(
                "Only function tools are supported", details={"tool": index, "field": "tools"}
            )
        keep = ("name", "description", "parameters")  # `strict`: every target is held to it
        translated.append(
            {"type": "function", "function": {k: function[k] for k in keep if k in function}}
        )
    return translated


def chat_request(body: OpenAIChatRequest) -> ChatRequest:
    """The native request an OpenAI chat completion request stands for (the fields nothing
    honours are checked apart, `unhonoured`)."""
    provider, model = split_model(body.model)
    messages = [
        m.model_dump(include=_MESSAGE_FIELDS, exclude_none=True)
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
        **body.model_dump(include=set(_CARRIED)),
    }
    try:
        return ChatRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    except pydantic.ValidationError as exc:
        raise invalid(exc) from None
