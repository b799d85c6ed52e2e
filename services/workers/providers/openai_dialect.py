"""Providers speaking OpenAI's chat-completions dialect (docs/providers.md §0), a profile each."""

from collections.abc import AsyncGenerator
from typing import Any

import httpx
import orjson

from services.workers.providers import retrieval, think_tags
from services.workers.providers.base import ProviderAdapter, trace_headers, upstream_error
from services.workers.providers.openai_choices import alternatives, logprobs_of
from services.workers.providers.openai_profiles import PROFILES, OpenAIProfile
from services.workers.providers.openai_wire import (
    StreamState,
    build_body,
    finish_reason,
    metadata_of,
    reasoning_details_of,
    reasoning_of,
    tool_calls_of,
    usage_from,
)
from services.workers.providers.shapes import ModelPage, OpenAIChunk, OpenAICompletion
from services.workers.providers.upstream_errors import is_credentials_error
from services.workers.sse import parse_sse
from shared import parameters
from shared.errors import GatewayError
from shared.messages import (
    DeltaEvent,
    DoneEvent,
    EmbeddingsResult,
    KeyCheckResult,
    ModelsResult,
    RerankResultEvent,
)
from shared.schemas import ChatMessage, ChatRequest, EmbeddingsRequest, RerankRequest


class OpenAIDialectAdapter(ProviderAdapter):
    @property
    def profile(self) -> OpenAIProfile:
        return PROFILES[self.provider.id]

    def headers(self, trace: str, *, stream: bool = False) -> dict[str, str]:
        return {
            "authorization": f"Bearer {self.api_key}",
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            **trace_headers(trace),
        }

    def check(self, request: ChatRequest) -> None:
        if request.tools:
            self.require("function-calling")
        parameters.check(request, self.provider.id, request.model)

    async def complete(self, request: ChatRequest, trace: str) -> DoneEvent:
        self.check(request)
        headers = self.headers(trace)
        sent = build_body(request, self.profile, headers)
        url = self.base_url + self.profile.chat_path
        answer = self.expect_object(await self.call("POST", url, headers, sent))
        if (error := answer.get("error")) is not None:
            # An error once the model began comes with status 200, alone or after the partial
            # answer (OpenRouter): the answer is an error, its message kept.
            raise self.answer_error(error)
        body = self.validated(OpenAICompletion, answer)
        choice = body["choices"][0]
        message = choice.get("message") or {}
        calls = tool_calls_of(message)
        content = message.get("content")
        reasoning = reasoning_of(message, self.profile)
        if self.profile.think_tags and isinstance(content, str):
            content, reasoning = think_tags.split(content)
        metadata = metadata_of(body, choice, self.profile)
        return DoneEvent(
            id=str(body.get("id", "")),
            model=str(body.get("model") or request.model),
            finish_reason=finish_reason(choice.get("finish_reason")),
            usage=usage_from(body.get("usage") or {}, self.profile),
            content=content if isinstance(content, str) else (None if calls else ""),
            reasoning_content=reasoning or None,
            reasoning_details=reasoning_details_of(message) or None,
            tool_calls=calls,
            logprobs=logprobs_of(choice),
            alternatives=alternatives(body["choices"], self.profile) or None,
            provider_metadata=metadata or None,
        )

    def answer_error(self, error: Any) -> GatewayError:
        """An error reported inside an answer: OpenRouter's `{"code": <status>, "message"}`
        (mapped like that status), or a bare string as text-generation-inference sends it."""
        if isinstance(error, dict):
            code, message = error.get("code"), str(error.get("message") or "")
            if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
                return upstream_error(
                    self.provider, code, orjson.dumps({"error": error}).decode(), httpx.Headers()
                )
            kind = str(code or error.get("type") or "")
            return self.stream_error(message or "an error without a message", kind)
        return self.stream_error(str(error)[:500])

    async def stream(
        self, request: ChatRequest, trace: str
    ) -> AsyncGenerator[DeltaEvent | DoneEvent, None]:
        self.check(request)
        state = StreamState(self.profile, model=request.model)
        headers = self.headers(trace, stream=True)
        body = build_body(request, self.profile, headers)
        async with self.open_stream(self.profile.chat_path, body, headers) as lines:
            async for sse in parse_sse(lines):
                if sse.data == "[DONE]":
                    break
                chunk = self.parse_json(sse.data, OpenAIChunk)
                if isinstance(error := chunk.get("error"), dict):
                    kind = str(error.get("code") or error.get("type") or "")
                    raise self.stream_error(str(error.get("message")), kind)
                if isinstance(error, str):  # text-generation-inference: {"error", "error_type"}
                    raise self.stream_error(error[:500], str(chunk.get("error_type") or ""))
                if (delta := state.feed(chunk)) is not None:
                    yield delta
        # Some providers (Perplexity) close the connection without `[DONE]`: fine after a finish.
        if state.finish is None:
            raise self.stream_error("the stream ended before a finish reason")
        yield DoneEvent(
            id=state.id,
            model=state.model,
            finish_reason=finish_reason(state.finish),
            usage=usage_from(state.usage, self.profile),
            provider_metadata=state.metadata or None,
        )

    async def models(self, trace: str) -> ModelsResult:
        if self.profile.models_path is None:
            return ModelsResult(models=list(self.profile.fixed_models))
        url = self.base_url + self.profile.models_path
        body = self.validated(ModelPage, await self.call("GET", url, self.headers(trace)))
        data = body.get("data") or []
        return ModelsResult(
            models=[str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]
        )

    async def check_key(self, trace: str) -> KeyCheckResult:
        if self.profile.key_check_path is None and self.profile.models_path is not None:
            return await super().check_key(trace)
        try:
            if self.profile.key_check_path is not None:
                await self.call(
                    "GET", self.base_url + self.profile.key_check_path, self.headers(trace)
                )
            else:
                await self.complete(self.ping(), trace)
        except GatewayError as exc:
            if is_credentials_error(exc):
                return KeyCheckResult(valid=False, reason=exc.message)
            raise
        return KeyCheckResult(valid=True, models=(await self.models(trace)).models)

    def ping(self) -> ChatRequest:
        """The smallest chat there is, for providers whose only authenticated call is chat."""
        return ChatRequest(
            provider=self.provider.id,
            model=self.profile.fixed_models[0],
            messages=[ChatMessage(role="user", content="ping")],
            max_tokens=1,
        )

    async def embeddings(self, request: EmbeddingsRequest, trace: str) -> EmbeddingsResult:
        self.require("embeddings")
        return await retrieval.embeddings(self, request, self.headers(trace))

    async def rerank(self, request: RerankRequest, trace: str) -> RerankResultEvent:
        self.require("rerank")
        return await retrieval.rerank(self, request, self.headers(trace))
