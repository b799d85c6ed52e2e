"""Anthropic Messages API (docs/providers.md §1) under `/anthropic`."""

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response

from services.simulator import anthropic_checks, garbage, keys, tools, wire
from services.simulator.config import SimulatorConfig
from services.simulator.prompt_cache import PromptCache
from services.simulator.recorder import attempt_of, counted, record_request
from services.simulator.replies import (
    FAIL_AFTER_CHUNKS,
    Directives,
    Reply,
    build_reply,
    count_words,
    parse_directives,
    seed_of,
    stop_at,
    text_of,
)

MODELS = (
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22T00:00:00Z"),
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
    ("claude-3-5-sonnet-20241022", "Claude Sonnet 3.5 (New)", "2024-10-22T00:00:00Z"),
)
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}
_SYSTEM_ROLE = (
    'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
    'parameter, not "system" as an input message role.'
)
# Captured Anthropic streams pad each data line with trailing spaces; vary the width a little.
_PADDING = (1, 3, 2)


def _request_id() -> str:
    return f"req_sim{uuid.uuid4().hex[:20]}"


def error_response(status: int, message: str = "", retry_after: int = 1) -> Response:
    error_type, default = _ERRORS.get(status, _ERRORS[500])
    request_id = _request_id()
    headers = {"request-id": request_id}
    if status in (429, 529):
        headers["retry-after"] = str(retry_after)
    if status in (429, 500, 503, 529):
        headers["x-should-retry"] = "true"
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message or default},
        "request_id": request_id,
    }
    return wire.json_response(body, status, headers)


def _auth_problem(request: Request) -> Response | None:
    key = request.headers.get("x-api-key") or wire.bearer_token(request)
    if not key:
        return error_response(401, "x-api-key header is required")
    if "fail-401" in key or not keys.known(request, key):
        return error_response(401)
    if not request.headers.get("anthropic-version"):
        return error_response(400, "anthropic-version: header is required")
    return None


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "There was an error parsing the body of your request"
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: Input should be a valid integer greater than or equal to 1"
    messages = body["messages"]
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return "messages: Input should be a valid list"
    for message in messages:
        if message.get("role") == "system":
            return _SYSTEM_ROLE
        if message.get("role") not in ("user", "assistant"):
            return f"messages: Unexpected role {message.get('role')!r}"
    return None


def _usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens - reply.cache_read - reply.cache_written,
        "cache_creation_input_tokens": reply.cache_written,
        "cache_read_input_tokens": reply.cache_read,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _message(
    model: str,
    reply: Reply,
    content: list[dict[str, Any]],
    stop: str | None,
    output: int = 1,
    stop_sequence: str | None = None,
) -> Any:
    return {
        "id": f"msg_sim{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": stop_sequence,
        "usage": _usage(reply, output),
    }


def _stop_reason(
    reply: Reply, calls: tuple[tools.ToolCall, ...], stop_sequence: str | None = None
) -> str:
    if calls:
        return "tool_use"
    if stop_sequence is not None:
        return "stop_sequence"
    return "max_tokens" if reply.truncated else "end_turn"


def _output_tokens(reply: Reply, calls: tuple[tools.ToolCall, ...]) -> int:
    if calls:
        return tools.completion_tokens(calls) + len(reply.reasoning_pieces)
    return reply.completion_tokens


def _text_events(reply: Reply, index: int) -> Iterator[tuple[str, dict[str, Any]]]:
    block = {"type": "text", "text": ""}
    start = {"type": "content_block_start", "index": index, "content_block": block}
    yield "content_block_start", start
    for piece in reply.pieces:
        delta = {"type": "text_delta", "text": piece}
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": index}


def _events(reply: Reply, calls: tuple[tools.ToolCall, ...]) -> Iterator[tuple[str, Any]]:
    """The content blocks' events: the thinking first (when there is any), then the reply."""
    first = 0
    if reply.reasoning_pieces:
        yield from anthropic_checks.thinking_events(reply.reasoning_pieces)
        first = 1
    yield from tools.anthropic_events(calls, first) if calls else _text_events(reply, first)


async def _stream_body(
    model: str,
    reply: Reply,
    directives: Directives,
    calls: tuple[tools.ToolCall, ...],
    stop_sequence: str | None,
) -> wire.Body:
    await asyncio.sleep(directives.latency_s)
    frames = 0

    def frame(event: str, data: Any) -> bytes:
        nonlocal frames
        frames += 1
        return wire.named_frame(event, data, _PADDING[frames % len(_PADDING)])

    start = {"type": "message_start", "message": _message(model, reply, [], None)}
    if directives.fail in garbage.GARBAGE:
        async for piece in _garbage_body(str(directives.fail), start, reply):
            yield piece
        return
    yield frame("message_start", start)
    failing = directives.fail in ("disconnect", "midstream")
    deltas = 0
    for event, data in _events(reply, calls):
        if event == "content_block_delta":
            if failing and deltas == FAIL_AFTER_CHUNKS:
                break
            if deltas:
                await asyncio.sleep(directives.chunk_delay_s)
            deltas += 1
        yield frame(event, data)
        if frames == 2:
            yield b'event: ping\ndata: {"type": "ping"}\n\n'
    if directives.fail == "disconnect":
        yield wire.DROP
        return
    if directives.fail == "midstream":
        error = {"type": "overloaded_error", "message": "Overloaded"}
        yield frame("error", {"type": "error", "error": error})
        return
    stop: dict[str, Any] = {
        "stop_reason": _stop_reason(reply, calls, stop_sequence),
        "stop_sequence": stop_sequence,
    }
    usage = _usage(reply, _output_tokens(reply, calls))
    del usage["service_tier"]
    yield frame("message_delta", {"type": "message_delta", "delta": stop, "usage": usage})
    yield frame("message_stop", {"type": "message_stop"})


def _garbage_body(kind: str, start: dict[str, Any], reply: Reply) -> wire.Body:
    """The reply as one text delta, broken the `kind` way (`garbage.py`), between the usual
    events."""
    block = {"type": "text", "text": ""}
    delta = {"type": "text_delta", "text": reply.text}
    stop = {"stop_reason": _stop_reason(reply, ()), "stop_sequence": None}
    before = [
        wire.named_frame("message_start", start),
        wire.named_frame(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        ),
    ]
    after = [
        wire.named_frame("content_block_stop", {"type": "content_block_stop", "index": 0}),
        wire.named_frame(
            "message_delta",
            {"type": "message_delta", "delta": stop, "usage": _usage(reply, len(reply.pieces))},
        ),
        wire.named_frame("message_stop", {"type": "message_stop"}),
    ]
    first = {"type": "content_block_delta", "index": 0, "delta": delta}
    return garbage.frames(
        kind, "anthropic", first, lambda d: wire.named_frame(d["type"], d), (before, after)
    )


def _prompt(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]], int]:
    system = text_of(body.get("system"))
    messages: list[dict[str, Any]] = body["messages"]
    tokens = count_words([system, *(text_of(m.get("content")) for m in messages)])
    return system, messages, tokens


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return text_of(users[-1].get("content")) if users else ""


def _ends_with_user_turn(messages: list[dict[str, Any]]) -> bool:
    last = messages[-1] if messages else {}
    content = last.get("content")
    blocks = content if isinstance(content, list) else []
    has_result = any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks)
    return last.get("role") == "user" and not has_result


async def create_message(request: Request) -> Response:
    config: SimulatorConfig = request.app.state.config
    body = await wire.json_body(request)
    record = record_request(request, "anthropic", body)
    problem = _auth_problem(request)
    invalid = _invalid(body) or anthropic_checks.problem(body)
    if problem is None and invalid is not None:
        problem = error_response(400, invalid)
    if problem is not None:
        record.status, record.outcome = problem.status_code, "error"
        return problem
    key = request.headers.get("x-api-key") or wire.bearer_token(request)
    system, messages, prompt_tokens = _prompt(body)
    directives = parse_directives(_last_user_text(messages), config, key)
    directives = directives.for_attempt(attempt_of(request, record))
    if directives.hold:
        await request.app.state.gates.hold(directives.hold)
    if isinstance(directives.fail, int) or (
        directives.fail == "midstream" and not body.get("stream")
    ):
        status = directives.fail if isinstance(directives.fail, int) else 529
        record.status, record.outcome = status, "error"
        await asyncio.sleep(directives.latency_s)
        return error_response(status, retry_after=directives.retry_after)
    seed = seed_of({"system": system, "messages": messages})
    thinking = anthropic_checks.thinking_on(body)
    reply = build_reply(seed, prompt_tokens, directives, body["max_tokens"], thinking)
    reply, stop_sequence = stop_at(reply, body.get("stop_sequences"))
    cache: PromptCache = request.app.state.prompt_cache
    cached = cache.anthropic(key or "", body)
    reply = replace(reply, cache_read=cached.read, cache_written=cached.written)
    user_turn = _ends_with_user_turn(messages)
    calls = tools.plan_tool_calls(
        directives, body.get("tools"), user_turn, "toolu_sim", seed, body.get("tool_choice")
    )
    output = _output_tokens(reply, calls)
    record.reply = "".join(c.arguments for c in calls) if calls else reply.text
    record.usage = _usage(reply, output)
    record.outcome = str(directives.fail or "ok")
    headers = {"request-id": _request_id()}
    if body.get("stream"):
        return wire.event_stream(
            counted(_stream_body(body["model"], reply, directives, calls, stop_sequence), record),
            headers,
        )
    content = tools.anthropic_blocks(calls) if calls else [{"type": "text", "text": reply.text}]
    if thinking:
        content.insert(0, anthropic_checks.thinking_block(reply.reasoning))
    stop = _stop_reason(reply, calls, stop_sequence)
    message = _message(body["model"], reply, content, stop, output, stop_sequence)
    if directives.fail == "disconnect":
        payload = wire.dumps(message)

        async def partial() -> wire.Body:
            await asyncio.sleep(directives.latency_s)
            yield payload[: len(payload) // 2]
            yield wire.DROP

        return wire.DroppableStream(partial(), headers=headers, media_type="application/json")
    await asyncio.sleep(directives.latency_s)
    if directives.fail in garbage.GARBAGE:
        return garbage.json_answer(str(directives.fail), "anthropic", message)
    return wire.json_response(message, headers=headers)


async def count_tokens(request: Request) -> Response:
    body = await wire.json_body(request)
    record_request(request, "anthropic", body)
    problem = _auth_problem(request)
    if problem is not None:
        return problem
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return error_response(400, "messages: Field required")
    return wire.json_response({"input_tokens": _prompt(body)[2]})


async def list_models(request: Request) -> Response:
    record_request(request, "anthropic", None)
    problem = _auth_problem(request)
    if problem is not None:
        return problem
    raw_limit = request.query_params.get("limit", "20")
    limit = int(raw_limit) if raw_limit.isdigit() else 20
    data = [
        {"type": "model", "id": mid, "display_name": name, "created_at": created}
        for mid, name, created in MODELS[:limit]
    ]
    return wire.json_response(
        {
            "data": data,
            "has_more": limit < len(MODELS),
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


def build_router() -> APIRouter:
    router = APIRouter(prefix="/anthropic")
    router.add_api_route("/v1/messages", create_message, methods=["POST"])
    router.add_api_route("/v1/messages/count_tokens", count_tokens, methods=["POST"])
    router.add_api_route("/v1/models", list_models, methods=["GET"])
    return router
