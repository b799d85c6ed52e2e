"""Anthropic Messages API (docs/providers.md §1)."""

from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlencode

import orjson

from services.workers.providers.anthropic_request import answer_tool, build_body, count_body
from services.workers.providers.anthropic_tools import tool_calls_from
from services.workers.providers.base import ProviderAdapter, trace_headers
from services.workers.providers.shapes import (
    AnthropicEvent,
    AnthropicMessage,
    AnthropicTokenCount,
    ModelPage,
)
from services.workers.sse import parse_sse
from shared.messages import DeltaEvent, DoneEvent, ModelsResult, TokenCount, ToolCallDelta
from shared.schemas import ChatRequest, Usage
from shared.thinking import details_of

DEFAULT_VERSION = "2023-06-01"
MODELS_PAGE = 100
MAX_MODEL_PAGES = 20

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def usage_from(raw: dict[str, Any]) -> Usage:
    """Anthropic's `input_tokens` are those after the last cache breakpoint: the prompt is
    those plus the tokens read from and written to the cache."""
    cached = int(raw.get("cache_read_input_tokens") or 0)
    written = int(raw.get("cache_creation_input_tokens") or 0)
    prompt = int(raw.get("input_tokens") or 0) + written + cached
    completion = int(raw.get("output_tokens") or 0)
    details = {"cached_tokens": cached, "cache_write_tokens": written}
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details={k: v for k, v in details.items() if v} or None,
    )


def finish_of(stop_reason: str, answered: bool, calls: object) -> str:
    """The unified finish reason; a call of the JSON answer's tool alone is a finished answer."""
    if stop_reason == "tool_use" and answered and not calls:
        return "stop"
    return FINISH_REASONS.get(stop_reason, "stop")


class StreamState:
    """Anthropic's named events to unified deltas; tool-call indices count tool blocks only.

    The input usage `message_start` reports rides on the first delta; a tool call whose block
    ends without input text gets `{}`, as its non-streamed `input` would read. The input of the
    tool named `answer` (a JSON answer, `anthropic_request`) streams as the answer's content;
    a thinking block's signature, and redacted thinking, as `reasoning_details`.
    """

    def __init__(self, model: str, answer: str | None = None) -> None:
        self.message_id, self.model, self.stop_reason = "", model, "end_turn"
        self.stop_sequence: str | None = None
        self.usage: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}
        self.silent_tools: set[int] = set()  # tool blocks that got no argument text yet
        self.usage_sent = False
        self.answer = answer
        self.answer_block: int | None = None  # the content block of the answer's tool call
        self.answer_silent = False

    def feed(self, data: dict[str, Any]) -> DeltaEvent | None:
        delta = self._event(data)
        if delta is None or self.usage_sent or not self.usage:
            return delta
        self.usage_sent = True
        return delta.model_copy(update={"usage": usage_from(self.usage)})

    def _event(self, data: dict[str, Any]) -> DeltaEvent | None:
        kind = data.get("type")
        if kind == "content_block_delta":
            return self._delta(data.get("index"), data.get("delta") or {})
        if kind == "content_block_start":
            return self._start(data.get("index", -1), data.get("content_block") or {})
        if kind == "content_block_stop":
            if data.get("index", -1) == self.answer_block and self.answer_silent:
                self.answer_silent = False
                return DeltaEvent(content="{}")
            stopped = self.tool_index.get(data.get("index", -1))
            if stopped is not None and stopped in self.silent_tools:
                self.silent_tools.discard(stopped)
                return DeltaEvent(tool_calls=(ToolCallDelta(index=stopped, arguments="{}"),))
        elif kind == "message_start":
            message = data.get("message") or {}
            self.message_id = str(message.get("id", ""))
            self.model = str(message.get("model") or self.model)
            self.usage.update(message.get("usage") or {})
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
            self.stop_sequence = delta.get("stop_sequence") or self.stop_sequence
            self.usage.update(data.get("usage") or {})  # cumulative: replaces, never adds
        return None

    def _start(self, block_index: Any, block: dict[str, Any]) -> DeltaEvent | None:
        kind = block.get("type")
        if kind == "tool_use" and self.answer is not None and block.get("name") == self.answer:
            self.answer_block, self.answer_silent = block_index, True
        elif kind == "tool_use":
            index = self.tool_index.setdefault(block_index, len(self.tool_index))
            self.silent_tools.add(index)
            call = ToolCallDelta(index=index, id=block.get("id"), name=block.get("name"))
            return DeltaEvent(tool_calls=(call,))
        elif kind == "redacted_thinking":
            return DeltaEvent(reasoning_details=tuple(details_of([block])))
        return None

    def _delta(self, block_index: Any, delta: dict[str, Any]) -> DeltaEvent | None:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return DeltaEvent(content=delta["text"])
        if kind == "thinking_delta" and delta.get("thinking"):
            return DeltaEvent(reasoning_content=delta["thinking"])
        if kind == "signature_delta" and delta.get("signature"):
            signed = {"type": "thinking", "thinking": "", "signature": delta["signature"]}
            return DeltaEvent(reasoning_details=tuple(details_of([signed])))
        if kind == "input_json_delta" and block_index == self.answer_block:
            if not delta.get("partial_json"):
                return None
            self.answer_silent = False
            return DeltaEvent(content=delta["partial_json"])
        if kind == "input_json_delta" and delta.get("partial_json"):
            index = self.tool_index.get(block_index, 0)
            self.silent_tools.discard(index)
            call = ToolCallDelta(index=index, arguments=delta["partial_json"])
            return DeltaEvent(tool_calls=(call,))
        return None

    def done(self) -> DoneEvent:
        return DoneEvent(
            id=self.message_id,
            model=self.model,
            finish_reason=finish_of(
                self.stop_reason, self.answer_block is not None, self.tool_index
            ),
            usage=usage_from(self.usage),
            stop_sequence=self.stop_sequence,
        )


class AnthropicAdapter(ProviderAdapter):
    def headers(self, trace: str, version: str | None = None) -> dict[str, str]:
        return {
            "x-api-key": self.api_key,
            "anthropic-version": version or DEFAULT_VERSION,
            "content-type": "application/json",
            **trace_headers(trace),
        }

    async def complete(self, request: ChatRequest, trace: str) -> DoneEvent:
        headers = self.headers(trace, request.anthropic_version)
        body = await self.post_json("/v1/messages", build_body(request), headers, AnthropicMessage)
        blocks: list[dict[str, Any]] = body["content"]
        text = "".join(b.get("text") or "" for b in blocks if b["type"] == "text")
        thinking = "".join(b.get("thinking") or "" for b in blocks if b["type"] == "thinking")
        name = answer_tool(request)
        answer = next(
            (b for b in blocks if b["type"] == "tool_use" and b.get("name") == name), None
        )
        calls = tool_calls_from(blocks, skip=name)
        if answer is not None:  # the JSON asked for is the content, whatever text came with it
            text = orjson.dumps(answer.get("input") or {}).decode()
        stop_reason = str(body.get("stop_reason"))
        return DoneEvent(
            id=str(body.get("id", "")),
            model=str(body.get("model", request.model)),
            finish_reason=finish_of(stop_reason, answer is not None, calls),
            usage=usage_from(body.get("usage") or {}),
            content=text if text or not calls else None,
            reasoning_content=thinking or None,
            reasoning_details=details_of(blocks) or None,
            tool_calls=calls,
            stop_sequence=body.get("stop_sequence"),
        )

    async def count_tokens(self, request: ChatRequest, trace: str) -> TokenCount:
        headers = self.headers(trace, request.anthropic_version)
        path = "/v1/messages/count_tokens"
        body = await self.post_json(path, count_body(request), headers, AnthropicTokenCount)
        return TokenCount(input_tokens=int(body["input_tokens"]))

    async def stream(
        self, request: ChatRequest, trace: str
    ) -> AsyncGenerator[DeltaEvent | DoneEvent, None]:
        state = StreamState(request.model, answer_tool(request))
        headers = self.headers(trace, request.anthropic_version)
        async with self.open_stream("/v1/messages", build_body(request), headers) as lines:
            async for sse in parse_sse(lines):
                data = self.parse_json(sse.data, AnthropicEvent)
                if data.get("type") == "message_stop":
                    yield state.done()
                    return
                if data.get("type") == "error":
                    error = data.get("error") or {}
                    raise self.stream_error(str(error.get("message")), str(error.get("type", "")))
                if (delta := state.feed(data)) is not None:
                    yield delta
        raise self.stream_error("the stream ended before message_stop")

    async def models(self, trace: str) -> ModelsResult:
        """Every page of `GET /v1/models`, following `has_more` / `last_id`."""
        models: list[str] = []
        after: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            query = {"limit": MODELS_PAGE} | ({"after_id": after} if after else {})
            url = f"{self.base_url}/v1/models?{urlencode(query)}"
            page = self.validated(ModelPage, await self.call("GET", url, self.headers(trace)))
            data = page.get("data") or []
            ids = [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]
            models += [i for i in ids if i not in models]
            last = page.get("last_id")
            if not page.get("has_more") or not isinstance(last, str) or last == after:
                break
            after = last
        return ModelsResult(models=models)
