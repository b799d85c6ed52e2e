"""The body of an Anthropic Messages request (docs/providers.md §1, §10.1).

Beyond the messages and tools (`anthropic_tools`): `top_k`, `service_tier`, the caller's `user`
as `metadata.user_id`, `thinking` with its token budget, and structured output the way
Anthropic documents it: a tool whose `input_schema` is the requested JSON schema, which the
model must call (`tool_choice`); the call's input is then the answer's content
(`answer_tool`).
"""

from typing import Any

from services.workers.providers.anthropic_tools import convert_messages, convert_tools
from shared import parameters
from shared.errors import InvalidRequest
from shared.schemas import ChatRequest

DEFAULT_MAX_TOKENS = 4096
# What `count_tokens` takes of a message request (the rest only shapes the answer).
_COUNTED = ("model", "messages", "system", "tools", "tool_choice", "thinking")
ANSWER_TOOL_DESCRIPTION = "Give the answer as this tool's input: JSON that fits its schema."


def _invalid(message: str, field: str) -> InvalidRequest:
    return InvalidRequest(message, details={"provider": "anthropic", "field": field})


def answer_tool(request: ChatRequest) -> str | None:
    """The name of the tool that carries the answer's JSON, when the request asks for JSON."""
    found = request.response_format
    return found.schema_name if found is not None and found.type != "text" else None


def _structured(request: ChatRequest, body: dict[str, Any], name: str) -> None:
    assert request.response_format is not None
    if request.thinking is not None and request.thinking.type == "enabled":
        raise _invalid(
            "Anthropic cannot force the JSON answer's tool call while thinking is enabled: "
            "send response_format or thinking, not both",
            "response_format",
        )
    tools = body.setdefault("tools", [])
    if any(tool["name"] == name for tool in tools):
        raise _invalid(f"A tool is already named '{name}', like the JSON schema", "tools")
    schema = request.response_format.answer_schema
    tools.append({"name": name, "description": ANSWER_TOOL_DESCRIPTION, "input_schema": schema})
    if "tool_choice" not in body:
        # Alone, the answer's tool is forced; beside the caller's tools, one of them is.
        body["tool_choice"] = {"type": "tool", "name": name} if len(tools) == 1 else {"type": "any"}


def build_body(request: ChatRequest) -> dict[str, Any]:
    parameters.check(request, "anthropic", request.model)
    if request.temperature is not None and request.temperature > 1:
        raise InvalidRequest(
            "Anthropic accepts temperature from 0 to 1",
            details={"provider": "anthropic", "field": "temperature"},
        )
    system, messages = convert_messages(request.messages)
    if not messages:
        raise _invalid(
            "Anthropic needs at least one user message besides the system prompt", "messages"
        )
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": messages,
    }
    optional = {
        "system": system or None,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "stop_sequences": request.stop_list(),
        "service_tier": request.service_tier,
        "metadata": {"user_id": request.user} if request.user is not None else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body.update(convert_tools(request))
    if request.thinking is not None:
        body["thinking"] = request.thinking.model_dump(exclude_none=True)
    if (name := answer_tool(request)) is not None:
        _structured(request, body, name)
    if request.stream:
        body["stream"] = True
    return body


def count_body(request: ChatRequest) -> dict[str, Any]:
    """The body of `POST /v1/messages/count_tokens`: what of a message request is input."""
    return {k: v for k, v in build_body(request).items() if k in _COUNTED}
