"""The catalogue's caching and failure rules, with the queue and Redis replaced by stubs."""

import asyncio
from typing import Any

import orjson
import pytest

from services.edge.catalogue import REDIS_TTL_SECONDS, Catalogue
from shared.errors import InvalidRequest, ProviderError
from shared.messages import Job, ModelsJob, ModelsResult
from shared.redis_keys import RedisKeys


class StubRedis:
    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.ttls: dict[str, int] = {}
        self.gets = 0

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        return self.values.get(key)

    async def set(self, key: str, value: bytes, ex: int) -> None:
        self.values[key], self.ttls[key] = value, ex


class StubQueue:
    def __init__(self, answers: dict[str, list[str] | Exception]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def job_fields(self, *, user_id: str, trace: str) -> dict[str, Any]:
        return {
            "id": "job_1",
            "reply_to": "r",
            "trace": trace,
            "ts": 0.0,
            "deadline": 30.0,
            "user_id": user_id,
        }

    async def call(self, job: Job, provider: str) -> ModelsResult:
        assert isinstance(job, ModelsJob)
        assert job.deadline == job.ts + 4.0
        self.calls.append(provider)
        await asyncio.sleep(0.01)
        answer = self.answers[provider]
        if isinstance(answer, Exception):
            raise answer
        return ModelsResult(models=answer)


def catalogue(answers: dict[str, list[str] | Exception]) -> tuple[Catalogue, StubQueue, StubRedis]:
    queue, redis = StubQueue(answers), StubRedis()
    return Catalogue(redis, queue, RedisKeys("t")), queue, redis  # type: ignore[arg-type]


async def test_a_list_is_fetched_once_then_served_from_memory_and_redis() -> None:
    cat, queue, redis = catalogue({"deepseek": ["deepseek-chat"]})

    results = await asyncio.gather(*(cat.models("deepseek") for _ in range(5)))

    assert results == [["deepseek-chat"]] * 5
    assert queue.calls == ["deepseek"]
    assert orjson.loads(redis.values["t:models:deepseek"]) == ["deepseek-chat"]
    assert redis.ttls["t:models:deepseek"] == REDIS_TTL_SECONDS
    gets = redis.gets
    await cat.check("deepseek", "deepseek-chat")
    assert redis.gets == gets


async def test_another_replica_finds_the_list_in_redis() -> None:
    cat, queue, redis = catalogue({"xai": ["grok-3"]})
    redis.values["t:models:xai"] = b'["grok-3", "grok-4"]'

    assert await cat.models("xai") == ["grok-3", "grok-4"]
    assert queue.calls == []


async def test_a_failed_fetch_is_unavailable_and_retried_by_the_listing() -> None:
    cat, queue, _ = catalogue({"xai": ProviderError("down")})
    for provider in ("anthropic", "deepseek", "openrouter", "litellm", "nvidia_nim", "perplexity"):
        queue.answers[provider] = ["m"]
    queue.answers["huggingface"] = ["m"]

    first = await cat.listing()
    status = {p.id: p.status for p in first.providers}
    assert status["xai"] == "unavailable"
    assert status["deepseek"] == "active"

    queue.answers["xai"] = ["grok-3"]
    second = await cat.listing()
    assert {p.id: p.models for p in second.providers}["xai"] == ["grok-3"]
    assert queue.calls.count("xai") == 2


async def test_an_unknown_list_does_not_block_but_a_known_one_rejects() -> None:
    cat, _, _ = catalogue({"deepseek": ProviderError("down"), "xai": ["grok-3"]})

    await cat.check("deepseek", "anything")
    await cat.check("xai", "grok-3")
    with pytest.raises(InvalidRequest) as caught:
        await cat.check("xai", "grok-9")
    assert caught.value.details == {
        "provider": "xai",
        "model": "grok-9",
        "available_models": ["grok-3"],
        "code": "model_not_found",
    }


async def test_hugging_face_retrieval_models_are_not_checked_against_its_chat_list() -> None:
    cat, queue, _ = catalogue({"huggingface": ["meta-llama/Llama-3.1-8B-Instruct"]})

    await cat.check("huggingface", "BAAI/bge-reranker-large", "rerank")
    assert queue.calls == []
    with pytest.raises(InvalidRequest):
        await cat.check("huggingface", "BAAI/bge-reranker-large", "chat")
