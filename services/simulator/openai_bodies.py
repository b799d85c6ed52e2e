"""OpenAI-dialect response bodies: the JSON completion and the SSE chunk stream, per profile."""

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from services.simulator import garbage, structured, tools, wire
from services.simulator.openai_errors import midstream_chunk
from services.simulator.openai_profile import OpenAIProfile
from services.simulator.openai_usage import citation_fields
from services.simulator.replies import FAIL_AFTER_CHUNKS, Directives, Reply

DONE = b"data: [DONE]\n\n"
KEEPALIVE_EVERY_CHUNKS = 16
PREAMBLE_LINES = b"\n\n\n"


@dataclass(frozen=True)
class Call:
    profile: OpenAIProfile
    body: dict[str, Any]
    model: str
    directives: Directives
    reply: Reply
    usage: dict[str, Any]
    keepalive_s: float
    seed: bytes
    calls: tuple[tools.ToolCall, ...] = ()
    reasons: bool = False
    choices: int = 1  # `n`, where the provider answers with several choices
    logprobs: int | None = None  # alternatives per token's log probability (`structured.py`)
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")

    @property
    def shows_reasoning(self) -> bool:
        """The answer carries its reasoning text (some models only count it in usage)."""
        return self.reasons and self.model not in self.profile.silent_reasoning_models

    @property
    def finish_reason(self) -> str:
        if self.directives.finish:
            return self.directives.finish
        if self.calls:
            return "tool_calls"
        return "length" if self.reply.truncated else "stop"


def _envelope(call: Call, object_name: str) -> dict[str, Any]:
    return {
        "id": call.id,
        "object": object_name,
        "created": int(time.time()),
        "model": call.model,
        **call.profile.envelope_extra,
    }


def _details(text: str) -> list[dict[str, Any]]:
    """OpenRouter's `reasoning_details` for a piece of reasoning text."""
    return [{"type": "reasoning.text", "text": text, "format": "unknown", "index": 0}]


def _tagged(reasoning: str) -> str:
    return f"<think>{reasoning}</think>\n\n"


def _token_logprobs(call: Call, pieces: tuple[str, ...]) -> dict[str, Any] | None:
    if call.logprobs is None:
        return None
    entries = [structured.logprob(p, i, call.logprobs) for i, p in enumerate(pieces)]
    return {"content": entries, "refusal": None}


def _other_choice(call: Call, index: int) -> dict[str, Any]:
    """Choice `index` of several: the reply's words in another order."""
    pieces = call.reply.pieces[index:] + call.reply.pieces[:index]
    return {
        "index": index,
        "message": {"role": "assistant", "content": "".join(pieces)},
        "logprobs": _token_logprobs(call, pieces),
        "finish_reason": call.finish_reason,
    }


def completion(call: Call) -> dict[str, Any]:
    profile = call.profile
    message: dict[str, Any] = {"role": "assistant", "content": call.reply.text}
    if call.shows_reasoning and profile.think_tags:
        message["content"] = _tagged(call.reply.reasoning) + call.reply.text
    elif call.shows_reasoning:
        message[profile.reasoning_field] = call.reply.reasoning
        if profile.reasoning_object is not None:
            message["reasoning_details"] = _details(call.reply.reasoning)
    if call.calls:
        message["content"] = None
        message["tool_calls"] = tools.openai_message_calls(call.calls)
    if profile.chunk_style == "xai":
        message["refusal"] = None
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "logprobs": None if call.calls else _token_logprobs(call, call.reply.pieces),
        "finish_reason": call.finish_reason,
    }
    if profile.native_finish_reason:
        choice["native_finish_reason"] = call.finish_reason
    choices = [choice, *(_other_choice(call, i) for i in range(1, call.choices))]
    result = {**_envelope(call, "chat.completion"), "choices": choices, "usage": call.usage}
    if profile.chunk_style == "perplexity":
        result |= citation_fields(call.seed)
    return result


def plain_json_wanted(call: Call) -> bool:
    preamble = call.profile.preamble
    waits = preamble == "latency" and call.directives.latency_ms > 0
    return not (preamble == "always" or waits or call.directives.fail == "disconnect")


async def json_body(call: Call) -> wire.Body:
    if call.profile.preamble == "always" or (
        call.profile.preamble == "latency" and call.directives.latency_ms > 0
    ):
        yield PREAMBLE_LINES
        async for line in wire.pause(call.directives.latency_s, b"\n", call.keepalive_s):
            yield line
    else:
        async for _ in wire.pause(call.directives.latency_s, None, 0):
            pass
    payload = wire.dumps(completion(call))
    if call.directives.fail == "disconnect":
        yield payload[: len(payload) // 2]
        yield wire.DROP
        return
    yield payload


def _reasoning_deltas(call: Call) -> list[dict[str, Any]]:
    profile, pieces = call.profile, call.reply.reasoning_pieces
    if not call.shows_reasoning:
        return []
    if profile.think_tags:
        return [{"content": p} for p in ("<think>", *pieces, "</think>\n\n")]
    if profile.reasoning_object is not None:
        return [{profile.reasoning_field: p, "reasoning_details": _details(p)} for p in pieces]
    return [{profile.reasoning_field: p} for p in pieces]


def _deltas(call: Call) -> list[dict[str, Any]]:
    field_name = call.profile.reasoning_field
    deltas = _reasoning_deltas(call)
    if call.calls:
        deltas += tools.openai_deltas(call.calls)
    else:
        deltas += [{"content": piece} for piece in call.reply.pieces]
    if call.shows_reasoning and call.profile.chunk_style == "openai":
        deltas = [{"content": None, field_name: None, **d} for d in deltas]
    return deltas


class _Chunker:
    """Builds one provider's chunk objects around the deltas."""

    def __init__(self, call: Call) -> None:
        self.call = call
        style = call.profile.chunk_style
        self.envelope = _envelope(
            call, "chat.completion" if style == "perplexity" else "chat.completion.chunk"
        )
        self.text = ""
        self.tokens = 0  # content pieces sent, for their log probabilities

    def _logprobs(self, delta: dict[str, Any]) -> dict[str, Any] | None:
        content = delta.get("content")
        if self.call.logprobs is None or not isinstance(content, str) or not content:
            return None
        self.tokens += 1
        return {"content": [structured.logprob(content, self.tokens - 1, self.call.logprobs)]}

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        style = self.call.profile.chunk_style
        choice: dict[str, Any] = {"index": 0, "delta": delta}
        if style == "perplexity":
            self.text += delta.get("content") or ""
            message = {"role": "assistant", "content": self.text}
            choice = {
                "index": 0,
                "finish_reason": finish,
                "message": message,
                "delta": {"role": "assistant", "content": delta.get("content") or ""},
            }
            extra = citation_fields(self.call.seed) if finish else {}
            return {**self.envelope, "choices": [choice], "usage": self.call.usage, **extra}
        if style == "openai":
            choice |= {"logprobs": self._logprobs(delta), "finish_reason": finish}
        elif (logprobs := self._logprobs(delta)) is not None:
            choice["logprobs"] = logprobs
        elif finish is not None:
            choice["finish_reason"] = finish
        if self.call.profile.native_finish_reason:
            choice["native_finish_reason"] = finish
        return {**self.envelope, "choices": [choice]}

    def opening(self, deltas: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """What precedes the paced deltas; may take the first delta (xAI merges the role in)."""
        style = self.call.profile.chunk_style
        if style == "openai":
            yield self.chunk({"role": "assistant", "content": ""})
        elif style == "xai" and deltas:
            yield self.chunk({**deltas.pop(0), "role": "assistant"})
            yield self.chunk({})


async def stream_body(call: Call) -> wire.Body:
    profile, directives = call.profile, call.directives
    keepalive = profile.keepalive
    if keepalive:
        yield keepalive
    async for comment in wire.pause(directives.latency_s, keepalive, call.keepalive_s):
        yield comment
    chunker = _Chunker(call)
    deltas = _deltas(call)
    if directives.fail in garbage.GARBAGE:
        first = chunker.chunk(deltas[0] if deltas else {"content": ""})
        around = ((), _ending(call, chunker))
        async for piece in garbage.frames(
            str(directives.fail), "openai", first, wire.data_frame, around
        ):
            yield piece
        return
    failing = directives.fail in ("disconnect", "midstream", "error_body")
    if failing:
        deltas = deltas[:FAIL_AFTER_CHUNKS]
    for opening in chunker.opening(deltas):
        yield wire.data_frame(opening)
    for i, delta in enumerate(deltas):
        if i:
            await asyncio.sleep(directives.chunk_delay_s)
        yield wire.data_frame(chunker.chunk(delta))
        if keepalive and i % KEEPALIVE_EVERY_CHUNKS == KEEPALIVE_EVERY_CHUNKS - 1:
            yield keepalive
    if directives.fail == "disconnect":
        yield wire.DROP
        return
    for frame in _ending(call, chunker):
        yield frame


def _ending(call: Call, chunker: _Chunker) -> Iterator[bytes]:
    """The midstream error chunk, or the finish chunk and optional usage chunk; then `[DONE]`."""
    profile = call.profile
    if call.directives.fail in ("midstream", "error_body"):
        yield wire.data_frame(midstream_chunk(profile, chunker.envelope))
    else:
        yield wire.data_frame(chunker.chunk({}, call.finish_reason))
        include_usage = (call.body.get("stream_options") or {}).get("include_usage")
        if include_usage and profile.chunk_style != "perplexity":
            yield wire.data_frame({**chunker.envelope, "choices": [], "usage": call.usage})
    if profile.done_marker:
        yield DONE
