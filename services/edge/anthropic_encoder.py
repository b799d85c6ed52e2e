"""How `/v1/messages` writes an answer: the message, its event stream, and error bodies.

The stream follows Anthropic's order (docs/providers.md §1): `message_start`, per content block
`content_block_start` / `content_block_delta`… / `content_block_stop`, then `message_delta`
(stop reason and usage) and `message_stop`; a failure after the 200 is an `event: error`.
"""

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from services.edge.anthropic_errors import error_object, error_type
from shared.errors import GatewayError, ProviderError
from shared.ids import new_id
from shared.messages import DeltaEvent, DoneEvent, ToolCallDelta
from shared.schemas import Usage
from shared.thinking import blocks_of

log = logging.getLogger(__name__)

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
# The answer broke off (DeepSeek's insufficient_system_resource, OpenRouter's error): Anthropic
# has no stop reason for that, so it is an error, never a complete-looking answer.
FAILED = "error"


def stop_reason(done: DoneEvent) -> str:
    """Anthropic's stop reason; one it has no name for passes as the provider gave it."""
    if done.stop_sequence is not None and done.finish_reason == "stop":
        return "stop_sequence"
    return STOP_REASONS.get(done.finish_reason, done.finish_reason)


def unfinished(done: DoneEvent) -> GatewayError | None:
    """The error an answer that broke off stands for."""
    if done.finish_reason != FAILED:
        return None
    return ProviderError(
        "The provider stopped before finishing its answer", status=503, details={"finish": FAILED}
    )


def usage_body(usage: Usage) -> dict[str, int]:
    """Anthropic's usage: `input_tokens` counts only what was neither read from nor written to
    the cache."""
    details = usage.prompt_tokens_details or {}
    read, written = details.get("cached_tokens", 0), details.get("cache_write_tokens", 0)
    return {
        "input_tokens": max(0, usage.prompt_tokens - read - written),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "output_tokens": usage.completion_tokens,
    }


def tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        log.warning("tool call arguments are not JSON; sending an empty input")
        return {}
    return value if isinstance(value, dict) else {"value": value}


def message_id(job_id: str) -> str:
    return "msg_" + job_id.partition("_")[2]


def message_body(message_id: str, model: str, done: DoneEvent) -> dict[str, Any]:
    # Anthropic's own thinking as it signed it; other providers' reasoning, unsigned.
    content = blocks_of(done.reasoning_details)
    if done.reasoning_content and not content:
        content.append({"type": "thinking", "thinking": done.reasoning_content, "signature": ""})
    if done.content:
        content.append({"type": "text", "text": done.content})
    content.extend(
        {
            "type": "tool_use",
            "id": call.id,
            "name": call.function.name,
            "input": tool_input(call.function.arguments),
        }
        for call in done.tool_calls or []
    )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(done),
        "stop_sequence": done.stop_sequence,
        "usage": usage_body(done.usage),
    }


def frame(event: str, data: dict[str, Any]) -> bytes:
    payload = orjson.dumps({"type": event, **data})
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def error_frame(error: GatewayError, trace: str) -> bytes:
    kind = error_type(error)
    mid_stream = kind if kind in ("overloaded_error", "timeout_error") else "api_error"
    body = error_object(error, trace, mid_stream)
    return frame("error", {"error": body["error"]})


_THINKING = {"type": "thinking", "thinking": "", "signature": ""}


class ContentBlocks:
    """Turns unified deltas into content-block events; one block is open at a time."""

    def __init__(self) -> None:
        self.count = 0
        self.open: tuple[str, int] | None = None  # (what the block holds, its index)
        self.tools: dict[int, int] = {}  # tool call index -> content block index

    def close(self) -> bytes:
        if self.open is None:
            return b""
        index, self.open = self.open[1], None
        return frame("content_block_stop", {"index": index})

    def _start(self, key: str, block: dict[str, Any]) -> tuple[bytes, int]:
        closed = self.close()
        index, self.count = self.count, self.count + 1
        self.open = (key, index)
        started = frame("content_block_start", {"index": index, "content_block": block})
        return closed + started, index

    def _into(self, key: str, block: dict[str, Any], delta: dict[str, Any]) -> bytes:
        """`delta` for the open block holding `key`, starting such a block first if needed."""
        out = b""
        if self.open is None or self.open[0] != key:
            out, _ = self._start(key, block)
        assert self.open is not None
        return out + frame("content_block_delta", {"index": self.open[1], "delta": delta})

    def _tool_piece(self, piece: ToolCallDelta) -> bytes:
        out = b""
        if piece.index not in self.tools:
            block = {
                "type": "tool_use",
                "id": piece.id or new_id("toolu"),
                "name": piece.name or "",
                "input": {},
            }
            out, self.tools[piece.index] = self._start(f"tool:{piece.index}", block)
        if piece.arguments:
            delta = {"type": "input_json_delta", "partial_json": piece.arguments}
            out += frame("content_block_delta", {"index": self.tools[piece.index], "delta": delta})
        return out

    def _signed(self, blocks: list[dict[str, Any]]) -> bytes:
        """A thinking block's signature (`signature_delta`, ending the block), or a redacted
        thinking block, whole."""
        out = b""
        for block in blocks:
            if block["type"] == "thinking":
                delta = {"type": "signature_delta", "signature": block["signature"]}
                out += self._into("thinking", _THINKING, delta) + self.close()
            else:
                started, _ = self._start("redacted", block)
                out += started + self.close()
        return out

    def delta(self, event: DeltaEvent) -> bytes:
        out = bytearray()
        if event.reasoning_content:
            delta = {"type": "thinking_delta", "thinking": event.reasoning_content}
            out += self._into("thinking", _THINKING, delta)
        if event.reasoning_details:
            out += self._signed(blocks_of(event.reasoning_details))
        if event.content:
            text = {"type": "text", "text": ""}
            out += self._into("text", text, {"type": "text_delta", "text": event.content})
        for piece in event.tool_calls:
            out += self._tool_piece(piece)
        return bytes(out)

    def finish(self, done: DoneEvent, cost: Decimal | None, trace: str) -> bytes:
        """The closing events; `message_delta`'s usage also says what the request cost. An
        answer that broke off ends with an error event instead."""
        if (error := unfinished(done)) is not None:
            return self.close() + error_frame(error, trace)
        delta = {"stop_reason": stop_reason(done), "stop_sequence": done.stop_sequence}
        usage: dict[str, Any] = {
            **usage_body(done.usage),
            "cost_usd": None if cost is None else float(cost),
        }
        return (
            self.close()
            + frame("message_delta", {"delta": delta, "usage": usage})
            + frame("message_stop", {})
        )


def message_start(message_id: str, model: str, usage: Usage) -> bytes:
    """`usage`: the input the provider reported at its start (Anthropic), or the answer's when
    it came whole, else our estimate; `message_delta` carries the final counts."""
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage_body(usage), "output_tokens": 0},
    }
    return frame("message_start", {"message": message})


class AnthropicEncoder:
    """One answer, in the message's shape or as its event stream. `prompt_estimate` gives
    `message_start` its input tokens when the first event does not report them; `trace` goes
    into the error event of an answer that broke off."""

    def __init__(
        self, job_id: str, model: str, prompt_estimate: Callable[[], int], trace: str
    ) -> None:
        self.id = message_id(job_id)
        self.model = model  # as the client wrote it
        self.prompt_estimate = prompt_estimate
        self.trace = trace
        self.blocks = ContentBlocks()

    def body(self, done: DoneEvent) -> bytes:
        if (error := unfinished(done)) is not None:
            raise error
        return orjson.dumps(message_body(self.id, self.model, done))

    def opening(self, first: DeltaEvent | DoneEvent) -> bytes:
        usage = first.usage
        if usage is None:  # the provider reports its input at the end only
            usage = Usage(prompt_tokens=self.prompt_estimate())
        return message_start(self.id, self.model, usage)

    def delta(self, event: DeltaEvent) -> bytes:
        return self.blocks.delta(event)

    def done(self, event: DoneEvent, cost: Decimal | None) -> bytes:
        return self.blocks.finish(event, cost, self.trace)

    def error(self, error: GatewayError, trace: str) -> bytes:
        return error_frame(error, trace)
