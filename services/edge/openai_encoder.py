"""How `/v1/chat/completions` writes an answer: OpenAI's `chat.completion` body, or its
`chat.completion.chunk` Server-Sent Events ending with `data: [DONE]`.

A failure after the stream began is a chunk with a top-level `error` in OpenAI's shape
(which OpenAI's SDKs raise), then [DONE].
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from services.edge.native_encoder import DONE_FRAME, frame, openai_delta, usage_with_cost
from services.edge.openai_errors import openai_error
from services.edge.openai_schemas import ChatCompletion, CompletionChoice, CompletionMessage
from shared.errors import GatewayError
from shared.messages import DeltaEvent, DoneEvent


@dataclass(frozen=True, slots=True)
class OpenAIEncoder:
    """What every chunk (or the body) of one answer repeats, and whether the stream ends with a
    usage chunk (`stream_options.include_usage`)."""

    id: str
    created: int
    model: str  # as the client wrote it: `provider/model`
    include_usage: bool = False

    def body(self, done: DoneEvent) -> bytes:
        """OpenAI's exact shape: `content` and `logprobs` present even when null; one choice,
        or `n` of them."""
        first = CompletionChoice(
            message=CompletionMessage(
                content=done.content,
                tool_calls=done.tool_calls or None,
                reasoning_content=done.reasoning_content or None,
                reasoning_details=done.reasoning_details or None,
            ),
            finish_reason=done.finish_reason,
            logprobs=done.logprobs,
        )
        others = [
            CompletionChoice(
                index=alternative.index,
                message=CompletionMessage(
                    content=alternative.content,
                    tool_calls=alternative.tool_calls or None,
                    reasoning_content=alternative.reasoning_content or None,
                ),
                finish_reason=alternative.finish_reason,
                logprobs=alternative.logprobs,
            )
            for alternative in done.alternatives or ()
        ]
        completion = ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[first, *others],
            usage=done.usage,
        )
        body = completion.model_dump()
        for choice in body["choices"]:
            shown = choice["message"]
            for optional in ("tool_calls", "reasoning_content", "reasoning_details"):
                if shown[optional] is None:
                    del shown[optional]
        body["usage"] = done.usage.model_dump(exclude_none=True)
        return orjson.dumps(body)

    def _frame(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        logprobs: tuple[dict[str, Any], ...] = (),
    ) -> bytes:
        choice = {
            "index": 0,
            "delta": delta,
            "finish_reason": finish_reason,
            "logprobs": {"content": list(logprobs)} if logprobs else None,
        }
        return self._frame([choice])

    def opening(self, first: DeltaEvent | DoneEvent) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def delta(self, event: DeltaEvent) -> bytes:
        delta = openai_delta(event)
        return self._chunk(delta, logprobs=event.logprobs) if delta or event.logprobs else b""

    def done(self, event: DoneEvent, cost: Decimal | None) -> bytes:
        frames = self._chunk({}, event.finish_reason)
        if self.include_usage:
            frames += self._frame([], usage=usage_with_cost(event, cost))
        return frames + DONE_FRAME

    def error(self, error: GatewayError, trace: str) -> bytes:
        return frame(openai_error(error, trace)) + DONE_FRAME
