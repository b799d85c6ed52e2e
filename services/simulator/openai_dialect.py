"""OpenAI-compatible chat completions (docs/providers.md §0), with each provider's quirks."""

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response

from services.simulator import (
    garbage,
    keys,
    openai_bodies,
    openai_checks,
    structured,
    tools,
    wire,
)
from services.simulator.config import SimulatorConfig
from services.simulator.openai_errors import error_in_body, error_response
from services.simulator.openai_profile import OpenAIProfile
from services.simulator.openai_usage import usage
from services.simulator.prompt_cache import PromptCache
from services.simulator.recorder import Record, attempt_of, counted, record_request
from services.simulator.replies import (
    FAIL_AFTER_CHUNKS,
    build_reply,
    count_words,
    max_tokens_of,
    parse_directives,
    seed_of,
    text_of,
)

MAX_CHOICES = 128

__all__ = ["OpenAIProfile", "auth_problem", "build_router", "chat_completions", "error_response"]


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


def auth_problem(request: Request, profile: OpenAIProfile) -> Response | None:
    """The provider's auth error when the bearer key is missing, unknown (`keys.py`) or
    contains `fail-401`."""
    key = wire.bearer_token(request)
    if not key:
        return error_response(profile, 401, missing_key=True)
    if "fail-401" in key or not keys.known(request, key):
        return error_response(profile, 401, key)
    return None


def _choices(profile: OpenAIProfile, body: dict[str, Any]) -> int:
    """How many choices the answer holds: `n` where the provider offers several."""
    n = body.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_CHOICES:
        return 1
    return n if profile.multiple_choices and not body.get("stream") else 1


async def chat_completions(request: Request, profile: OpenAIProfile) -> Response:
    config: SimulatorConfig = request.app.state.config
    body = await wire.json_body(request)
    record = record_request(request, profile.id, body)
    key = wire.bearer_token(request)
    if (unknown := auth_problem(request, profile)) is not None and "fail-401" not in key:
        record.status, record.outcome = unknown.status_code, "error"
        return unknown
    problem = _invalid(body) or openai_checks.refusal(profile, body)
    if problem:
        record.status, record.outcome = 400, "error"
        return error_response(profile, 400, key, problem)
    messages: list[dict[str, Any]] = body["messages"]
    directives = parse_directives(_last_user_text(messages), config, key)
    directives = directives.for_attempt(attempt_of(request, record))
    if directives.hold:
        await request.app.state.gates.hold(directives.hold)
    if isinstance(directives.fail, int):
        async for _ in wire.pause(directives.latency_s, None, 0):
            pass
        response = error_response(
            profile, directives.fail, key, model=body["model"], retry_after=directives.retry_after
        )
        record.status, record.outcome = response.status_code, "error"
        return response
    reasoning_model = openai_checks.reasons(profile, body)
    prompt_tokens = count_words(text_of(m.get("content")) for m in messages)
    seed = seed_of(messages)
    reply = build_reply(seed, prompt_tokens, directives, max_tokens_of(body), reasoning_model)
    if profile.cache_usage:
        cache: PromptCache = request.app.state.prompt_cache
        reply = replace(reply, cache_read=cache.deepseek(key, body["model"], messages).read)
    if (schema := structured.wanted(body)) is not None:
        reply = structured.as_json(reply, schema)
    calls: tuple[tools.ToolCall, ...] = ()
    if profile.chunk_style != "perplexity":
        ends_with_user = messages[-1].get("role") == "user"
        calls = tools.plan_tool_calls(directives, body.get("tools"), ends_with_user, "call_", seed)
    output = (
        tools.completion_tokens(calls) if calls else len(reply.pieces) * _choices(profile, body)
    )
    call = openai_bodies.Call(
        profile=profile,
        body=body,
        model=body["model"],
        directives=directives,
        reply=reply,
        usage=usage(profile, reply, output, reasoning_model, body),
        keepalive_s=config.keepalive_ms / 1000,
        seed=seed,
        calls=calls,
        reasons=reasoning_model,
        choices=_choices(profile, body),
        logprobs=structured.logprobs_of(body),
    )
    record.reply = "".join(c.arguments for c in calls) if calls else reply.text
    record.reasoning = reply.reasoning if call.shows_reasoning else ""
    record.usage = call.usage
    record.outcome = str(directives.fail or "ok")
    if body.get("stream"):
        return wire.event_stream(counted(openai_bodies.stream_body(call), record))
    return await _whole_answer(call, record, key)


async def _whole_answer(call: openai_bodies.Call, record: Record, key: str) -> Response:
    """A non-streamed answer, or the failure its directives ask for."""
    profile, directives, reply = call.profile, call.directives, call.reply
    if directives.fail in ("midstream", "error_body"):
        if profile.error_style != "openrouter":
            record.status = 503
            return error_response(profile, 503, key)
        cut = replace(call, reply=replace(reply, pieces=reply.pieces[:FAIL_AFTER_CHUNKS]))
        partial = openai_bodies.completion(cut) if directives.fail == "midstream" else None
        return wire.json_response(error_in_body(partial))
    if directives.fail in garbage.GARBAGE:
        async for _ in wire.pause(directives.latency_s, None, 0):
            pass
        return garbage.json_answer(str(directives.fail), "openai", openai_bodies.completion(call))
    if not openai_bodies.plain_json_wanted(call):
        return wire.DroppableStream(openai_bodies.json_body(call), media_type="application/json")
    async for _ in wire.pause(directives.latency_s, None, 0):
        pass
    return wire.json_response(openai_bodies.completion(call))


def build_router(profile: OpenAIProfile) -> APIRouter:
    router = APIRouter(prefix=f"/{profile.id}")

    async def chat(request: Request) -> Response:
        return await chat_completions(request, profile)

    async def models(request: Request) -> Response:
        record_request(request, profile.id, None)
        problem = None if profile.public_models else auth_problem(request, profile)
        if problem is not None:
            return problem
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": profile.id}
            | dict(profile.model_extra)
            for m in profile.models
        ]
        return wire.json_response({"object": "list", "data": data})

    def fixed(payload: Any) -> Any:
        async def handler(request: Request) -> Response:
            record_request(request, profile.id, None)
            problem = auth_problem(request, profile)
            return problem if problem is not None else wire.json_response(payload)

        return handler

    for prefix in ("", "/v1"):
        router.add_api_route(f"{prefix}/chat/completions", chat, methods=["POST"])
        router.add_api_route(f"{prefix}/models", models, methods=["GET"])
        for path, payload in profile.extra_get.items():
            router.add_api_route(f"{prefix}/{path}", fixed(payload), methods=["GET"])
    return router
