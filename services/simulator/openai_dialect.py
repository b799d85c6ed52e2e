"""OpenAI-compatible chat completions (providers.md §0) with per-provider quirks from a profile."""

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response

from services.simulator import wire
from services.simulator.config import SimulatorConfig
from services.simulator.recorder import Record, Recorder
from services.simulator.replies import (
    FAIL_AFTER_CHUNKS,
    Directives,
    Reply,
    build_reply,
    count_words,
    max_tokens_of,
    parse_directives,
    seed_of,
    text_of,
)

KEEPALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"
KEEPALIVE_EVERY_CHUNKS = 16

_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request", "invalid_request_error", "invalid_request_error"),
    429: ("Rate limit reached for requests", "rate_limit_error", "rate_limit_exceeded"),
    500: ("Internal server error", "server_error", "internal_error"),
    503: ("Server overloaded, please retry later", "server_error", "server_overloaded"),
    529: ("Overloaded", "server_error", "overloaded"),
}


@dataclass(frozen=True)
class OpenAIProfile:
    """One OpenAI-dialect provider, served under `/{id}`."""

    id: str
    models: tuple[str, ...]
    reasoning_models: frozenset[str] = frozenset()
    keepalive_comments: bool = False
    blank_line_preamble: bool = False
    cache_usage: bool = False
    auth_message: str = "Incorrect API key provided: {key}"
    extra_get: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Call:
    profile: OpenAIProfile
    body: dict[str, Any]
    model: str
    directives: Directives
    reply: Reply
    usage: dict[str, Any]
    keepalive_s: float

    @property
    def reasoning_model(self) -> bool:
        return self.model in self.profile.reasoning_models


def _mask(key: str) -> str:
    return "****" + key[-4:]


def error_response(
    profile: OpenAIProfile, status: int, key: str = "", message: str = ""
) -> Response:
    detail: tuple[str, str, str | None]
    if status == 401:
        detail = (
            profile.auth_message.format(key=_mask(key)),
            "authentication_error",
            "invalid_request_error",
        )
    else:
        detail = _ERRORS.get(status, _ERRORS[500])
    error = {"message": message or detail[0], "type": detail[1], "param": None, "code": detail[2]}
    headers = {"retry-after": "1"} if status == 429 else None
    return wire.json_response({"error": error}, status, headers)


def _usage(profile: OpenAIProfile, reply: Reply, reasoning_model: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
    if profile.cache_usage:
        usage["prompt_tokens_details"] = {"cached_tokens": 0}
        usage["prompt_cache_hit_tokens"] = 0
        usage["prompt_cache_miss_tokens"] = reply.prompt_tokens
    if reasoning_model:
        usage["completion_tokens_details"] = {"reasoning_tokens": len(reply.reasoning_pieces)}
    return usage


def _envelope(call: _Call, object_name: str, created: int, cid: str) -> dict[str, Any]:
    return {"id": cid, "object": object_name, "created": created, "model": call.model}


def _finish_reason(call: _Call) -> str:
    return "length" if call.reply.truncated else "stop"


def _completion(call: _Call) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": call.reply.text}
    if call.reasoning_model:
        message["reasoning_content"] = call.reply.reasoning
    return {
        **_envelope(call, "chat.completion", int(time.time()), f"chatcmpl-{uuid.uuid4().hex}"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(call),
            }
        ],
        "usage": call.usage,
    }


async def _json_body(call: _Call) -> wire.Body:
    if call.profile.blank_line_preamble and call.directives.latency_ms > 0:
        yield b"\n"
        async for line in wire.pause(call.directives.latency_s, b"\n", call.keepalive_s):
            yield line
    else:
        async for _ in wire.pause(call.directives.latency_s, None, 0):
            pass
    payload = wire.dumps(_completion(call))
    if call.directives.fail == "disconnect":
        yield payload[: len(payload) // 2]
        yield wire.DROP
        return
    yield payload


async def _stream_body(call: _Call) -> wire.Body:
    keepalive = KEEPALIVE if call.profile.keepalive_comments else None
    if keepalive:
        yield keepalive
    async for comment in wire.pause(call.directives.latency_s, keepalive, call.keepalive_s):
        yield comment
    envelope = _envelope(
        call, "chat.completion.chunk", int(time.time()), f"chatcmpl-{uuid.uuid4().hex}"
    )

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return wire.data_frame({**envelope, "choices": [choice]})

    yield chunk({"role": "assistant", "content": ""})
    pieces = [("reasoning_content", p) for p in call.reply.reasoning_pieces]
    pieces += [("content", p) for p in call.reply.pieces]
    failing = call.directives.fail in ("disconnect", "midstream")
    for i, (name, piece) in enumerate(pieces[:FAIL_AFTER_CHUNKS] if failing else pieces):
        if i:
            await asyncio.sleep(call.directives.chunk_delay_s)
        delta: dict[str, Any] = {name: piece}
        if call.reasoning_model:
            delta = {"content": None, "reasoning_content": None, **delta}
        yield chunk(delta)
        if keepalive and i % KEEPALIVE_EVERY_CHUNKS == KEEPALIVE_EVERY_CHUNKS - 1:
            yield keepalive
    if call.directives.fail == "disconnect":
        yield wire.DROP
        return
    if call.directives.fail == "midstream":
        error = {
            "message": "Server overloaded, please retry later",
            "type": "server_error",
            "code": "overloaded",
        }
        yield wire.data_frame(
            {
                **envelope,
                "error": error,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}],
            }
        )
        yield DONE
        return
    yield chunk({}, _finish_reason(call))
    if (call.body.get("stream_options") or {}).get("include_usage"):
        yield wire.data_frame({**envelope, "choices": [], "usage": call.usage})
    yield DONE


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Failed to deserialize the JSON body into the target type"
    if not isinstance(body.get("model"), str):
        return "Failed to deserialize the JSON body: missing field `model`"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "Failed to deserialize the JSON body: missing field `messages`"
    if not all(isinstance(m, dict) for m in messages):
        return "Failed to deserialize the JSON body: invalid type in `messages`"
    return None


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


async def chat_completions(request: Request, profile: OpenAIProfile) -> Response:
    config: SimulatorConfig = request.app.state.config
    recorder: Recorder = request.app.state.recorder
    body = await wire.json_body(request)
    record = Record(
        provider=profile.id,
        method=request.method,
        path=request.url.path,
        headers=wire.lower_headers(request),
        body=body,
        status=200,
    )
    recorder.add(record)
    key = wire.bearer_token(request)
    problem = _invalid(body)
    if not key or problem:
        record.status, record.outcome = (401, "error") if not key else (400, "error")
        return error_response(profile, record.status, key, problem or "")
    messages: list[dict[str, Any]] = body["messages"]
    directives = parse_directives(_last_user_text(messages), config, key)
    if isinstance(directives.fail, int):
        record.status, record.outcome = directives.fail, "error"
        async for _ in wire.pause(directives.latency_s, None, 0):
            pass
        return error_response(profile, directives.fail, key)
    reasoning_model = body["model"] in profile.reasoning_models
    prompt_tokens = count_words(text_of(m.get("content")) for m in messages)
    reply = build_reply(
        seed_of(messages), prompt_tokens, directives, max_tokens_of(body), reasoning_model
    )
    call = _Call(
        profile=profile,
        body=body,
        model=body["model"],
        directives=directives,
        reply=reply,
        usage=_usage(profile, reply, reasoning_model),
        keepalive_s=config.keepalive_ms / 1000,
    )
    record.reply, record.reasoning, record.usage = reply.text, reply.reasoning, call.usage
    record.outcome = str(directives.fail or "ok")
    if body.get("stream"):
        return wire.event_stream(_stream_body(call))
    if directives.fail == "midstream":
        record.status = 503
        return error_response(profile, 503, key)
    if (profile.blank_line_preamble and directives.latency_ms) or directives.fail == "disconnect":
        return wire.DroppableStream(_json_body(call), media_type="application/json")
    async for _ in wire.pause(directives.latency_s, None, 0):
        pass
    return wire.json_response(_completion(call))


def build_router(profile: OpenAIProfile) -> APIRouter:
    router = APIRouter(prefix=f"/{profile.id}")

    async def chat(request: Request) -> Response:
        return await chat_completions(request, profile)

    async def models(request: Request) -> Response:
        key = wire.bearer_token(request)
        if not key or "fail-401" in key:
            return error_response(profile, 401, key)
        data = [{"id": m, "object": "model", "owned_by": profile.id} for m in profile.models]
        return wire.json_response({"object": "list", "data": data})

    def fixed(payload: Any) -> Any:
        async def handler(request: Request) -> Response:
            if not wire.bearer_token(request):
                return error_response(profile, 401)
            return wire.json_response(payload)

        return handler

    for prefix in ("", "/v1"):
        router.add_api_route(f"{prefix}/chat/completions", chat, methods=["POST"])
        router.add_api_route(f"{prefix}/models", models, methods=["GET"])
        for path, payload in profile.extra_get.items():
            router.add_api_route(f"{prefix}/{path}", fixed(payload), methods=["GET"])
    return router
