"""How `/v1/messages` writes an answer: the message, its event stream, and error bodies.

The stream follows Anthropic's order (docs/providers.md §1): `message_start`, per content block
`content_block_start` / `content_block_delta`… / `content_block_stop`, then `message_delta`
(stop reason and usage) and `message_stop`; a failure after the 200 is an `event: error`.
"""

import logging
from decimal import Decimal
from typing import Any

import orjson

from shared.errors import GatewayError
from shared.ids import new_id
from shared.messages import DeltaEvent, DoneEvent, ToolCallDelta
from shared.schemas import Usage

log = logging.getLogger(__name__)

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: str) -> str:
    return STOP_REASONS.get(finish_reason, "end_turn")


def usage_body(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}


def error_type(status: int) -> str:
    """Anthropic's error type for one of our HTTP statuses."""
    named = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
    if status in named:
        return named[status]
    if status in (503, 529):
        return "overloaded_error"
    return "api_error" if status >= 500 else "invalid_request_error"


def error_object(error: GatewayError, trace: str, type_: str | None = None) -> dict[str, Any]:
    """Anthropic's error body, extended with our trace id (and details, when there are any)."""
    body: dict[str, Any] = {"type": type_ or error_type(error.status), "message": error.message}
    if error.details:
        body["details"] = error.details
    body["trace_id"] = trace
    return {"type": "error", "error": body}


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
    content: list[dict[str, Any]] = []
    if done.reasoning_content:
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
        "stop_reason": stop_reason(done.finish_reason),
        "stop_sequence": None,
        "usage": usage_body(done.usage),
    }


def frame(event: str, data: dict[str, Any]) -> bytes:
    payload = orjson.dumps({"type": event, **data})
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def error_frame(error: GatewayError, trace: str) -> bytes:
    overloaded = error_type(error.status) == "overloaded_error"
    body = error_object(error, trace, "overloaded_error" if overloaded else "api_error")
    return frame("error", {"error": body["error"]})


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

    def delta(self, event: DeltaEvent) -> bytes:
        out = bytearray()
        if event.reasoning_content:
            thinking = {"type": "thinking", "thinking": "", "signature": ""}
            delta = {"type": "thinking_delta", "thinking": event.reasoning_content}
            out += self._into("thinking", thinking, delta)
        if event.content:
            text = {"type": "text", "text": ""}
            out += self._into("text", text, {"type": "text_delta", "text": event.content})
        for piece in event.tool_calls:
            out += self._tool_piece(piece)
        return bytes(out)

    def finish(self, done: DoneEvent, cost: Decimal | None) -> bytes:
        """The closing events; `message_delta`'s usage also says what the request cost."""
        delta = {"stop_reason": stop_reason(done.finish_reason), "stop_sequence": None}
        usage: dict[str, Any] = {
            **usage_body(done.usage),
            "cost_usd": None if cost is None else float(cost),
        }
        return (
            self.close()
            + frame("message_delta", {"delta": delta, "usage": usage})
            + frame("message_stop", {})
        )


def message_start(message_id: str, model: str) -> bytes:
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        # Input tokens are only known when the job is done; `message_delta` carries them.
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    return frame("message_start", {"message": message})


class AnthropicEncoder:
    """One answer, in the message's shape or as its event stream."""

    def __init__(self, job_id: str, model: str) -> None:
        self.id = message_id(job_id)
        self.model = model  # as the client wrote it
        self.blocks = ContentBlocks()

    def body(self, done: DoneEvent) -> bytes:
        return orjson.dumps(message_body(self.id, self.model, done))

    def opening(self) -> bytes:
        return message_start(self.id, self.model)

    def delta(self, event: DeltaEvent) -> bytes:
        return self.blocks.delta(event)

    def done(self, event: DoneEvent, cost: Decimal | None) -> bytes:
        return self.blocks.finish(event, cost)

    def error(self, error: GatewayError, trace: str) -> bytes:
        return error_frame(error, trace)
