"""Embeddings, rerank and model-list jobs, sent straight onto a provider's job stream.

The test does what the edge does: subscribe to the job's reply channel, XADD the job to
`jobs:{provider}`, and read the one terminal event the worker publishes.
"""

import asyncio
import secrets
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.fleet.plan import FleetConfig
from services.simulator import retrieval
from shared.messages import (
    EmbeddingsJob,
    EmbeddingsResult,
    ErrorEvent,
    Event,
    Job,
    ModelsJob,
    ModelsResult,
    RerankJob,
    RerankResultEvent,
    decode_event,
    encode,
    unframe,
)
from shared.redis_keys import RedisKeys
from shared.schemas import EmbeddingsRequest, RerankRequest

DOCUMENTS = [
    "Paris is the capital of France.",
    "The GPU has high memory bandwidth.",
    "GPU memory bandwidth of the H100 is 3 TB/s.",
    "Bananas are yellow.",
]
QUERY = "GPU memory bandwidth"
RERANKERS = {
    "nvidia_nim": ("nvidia/llama-3.2-nv-rerankqa-1b-v2", "POST", None),
    "huggingface": ("BAAI/bge-reranker-large", "POST", "/huggingface/rerank"),
    "litellm": ("rerank", "POST", "/litellm/rerank"),
}
NIM_RERANK_PATH = "/nvidia_nim/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking"


def fields(trace: str) -> dict[str, Any]:
    now, job_id = time.time(), f"job_test_{secrets.token_hex(6)}"
    return {
        "id": job_id,
        "reply_to": RedisKeys("gw-test").replies(job_id),
        "trace": trace,
        "ts": now,
        "deadline": now + 30,
        "user_id": "usr_test",
    }


async def run(redis_url: str, fleet: FleetConfig, provider: str, job: Job) -> Event:
    keys = RedisKeys(fleet.redis_prefix)
    redis = Redis.from_url(redis_url)
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(job.reply_to)
        await redis.xadd(keys.jobs(provider), {"job": encode(job)})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                return decode_event(unframe(message["data"])[1])
        raise AssertionError("no reply from the worker")
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await redis.aclose()


async def records(simulator: httpx.AsyncClient, trace: str) -> list[dict[str, Any]]:
    response = await simulator.get("/_sim/requests", params={"trace_id": trace})
    found: list[dict[str, Any]] = response.json()["requests"]
    return found


def trace_id() -> str:
    return f"req_test_{secrets.token_hex(6)}"


@pytest.mark.parametrize(
    ("provider", "model", "path"),
    [
        ("nvidia_nim", "nvidia/nv-embedqa-e5-v5", "/nvidia_nim/embeddings"),
        ("litellm", "text-embedding-3-small", "/litellm/embeddings"),
        (
            "huggingface",
            "BAAI/bge-large-en-v1.5",
            "/huggingface/hf-inference/models/BAAI/bge-large-en-v1.5/pipeline/feature-extraction",
        ),
    ],
)
@pytest.mark.parametrize("single", [True, False], ids=["one", "list"])
async def test_embeddings_one_vector_per_input_in_order(
    redis_url: str,
    fleet: FleetConfig,
    simulator: httpx.AsyncClient,
    provider: str,
    model: str,
    path: str,
    single: bool,
) -> None:
    texts = ["what is a GPU?"] if single else ["first text", "second one here", "third"]
    request = EmbeddingsRequest(provider=provider, model=model, input=texts[0] if single else texts)
    trace = trace_id()
    event = await run(redis_url, fleet, provider, EmbeddingsJob(**fields(trace), request=request))

    assert isinstance(event, EmbeddingsResult), event
    assert event.vectors == [retrieval.vector(text) for text in texts]
    assert event.usage.prompt_tokens == retrieval.token_count(texts)
    assert event.model == model
    [record] = await records(simulator, trace)
    assert record["path"] == path
    if provider == "nvidia_nim":
        assert record["body"]["input_type"] == "query"
    if provider == "huggingface":
        assert record["body"] == {"inputs": texts[0] if single else texts, "normalize": True}


async def test_nim_embeddings_pass_input_type_and_truncate(
    redis_url: str, fleet: FleetConfig, simulator: httpx.AsyncClient
) -> None:
    request = EmbeddingsRequest(
        provider="nvidia_nim",
        model="nvidia/nv-embedqa-e5-v5",
        input=["a passage"],
        input_type="passage",
        truncate="END",
    )
    trace = trace_id()
    event = await run(
        redis_url, fleet, "nvidia_nim", EmbeddingsJob(**fields(trace), request=request)
    )

    assert isinstance(event, EmbeddingsResult), event
    [record] = await records(simulator, trace)
    assert record["body"]["input_type"] == "passage"
    assert record["body"]["truncate"] == "END"


def expected_ranking() -> list[tuple[int, float]]:
    ranking = retrieval.ranked(QUERY, DOCUMENTS)
    return [(index, retrieval.sigmoid(logit)) for index, logit in ranking]


@pytest.mark.parametrize("provider", sorted(RERANKERS))
@pytest.mark.parametrize(("top_n", "documents"), [(None, True), (2, False)])
async def test_rerank_sorted_with_top_n_and_documents(
    redis_url: str,
    fleet: FleetConfig,
    simulator: httpx.AsyncClient,
    provider: str,
    top_n: int | None,
    documents: bool,
) -> None:
    model, _, path = RERANKERS[provider]
    request = RerankRequest(
        provider=provider,
        model=model,
        query=QUERY,
        documents=DOCUMENTS,
        top_n=top_n,
        return_documents=documents,
    )
    trace = trace_id()
    event = await run(redis_url, fleet, provider, RerankJob(**fields(trace), request=request))

    assert isinstance(event, RerankResultEvent), event
    expected = expected_ranking()[:top_n]
    assert [r.index for r in event.results] == [index for index, _ in expected]
    for result, (_, score) in zip(event.results, expected, strict=True):
        assert result.relevance_score == pytest.approx(score, abs=1e-5)
        assert result.document == (DOCUMENTS[result.index] if documents else None)
    scores = [r.relevance_score for r in event.results]
    assert scores == sorted(scores, reverse=True)
    [record] = await records(simulator, trace)
    if provider == "nvidia_nim":
        assert record["path"] == NIM_RERANK_PATH
        assert record["body"]["query"] == {"text": QUERY}
        assert record["body"]["passages"] == [{"text": d} for d in DOCUMENTS]
        assert record["body"]["truncate"] == "END"
    elif provider == "huggingface":
        assert record["path"] == path
        assert record["body"] == {"query": QUERY, "texts": DOCUMENTS, "return_text": False}
    else:
        assert record["path"] == path
        assert record["body"]["documents"] == DOCUMENTS


@pytest.mark.parametrize(
    ("provider", "path", "some_models"),
    [
        ("anthropic", "/anthropic/v1/models", ["claude-sonnet-4-20250514"]),
        ("deepseek", "/deepseek/models", ["deepseek-chat", "deepseek-reasoner"]),
        ("xai", "/xai/models", ["grok-3-mini"]),
        ("openrouter", "/openrouter/models", ["openai/gpt-4o-mini"]),
        ("litellm", "/litellm/v1/models", ["gpt-4o-mini"]),
        ("nvidia_nim", "/nvidia_nim/models", ["meta/llama-3.3-70b-instruct"]),
        ("huggingface", "/huggingface/v1/models", ["meta-llama/Llama-3.1-8B-Instruct"]),
        ("perplexity", None, ["sonar", "sonar-pro", "sonar-deep-research"]),
    ],
)
async def test_models_come_from_the_providers_list(
    redis_url: str,
    fleet: FleetConfig,
    simulator: httpx.AsyncClient,
    provider: str,
    path: str | None,
    some_models: list[str],
) -> None:
    trace = trace_id()
    event = await run(redis_url, fleet, provider, ModelsJob(**fields(trace)))

    assert isinstance(event, ModelsResult), event
    assert set(some_models) <= set(event.models)
    assert len(event.models) == len(set(event.models))
    found = await records(simulator, trace)
    assert [r["path"] for r in found] == ([path] if path else [])


@pytest.mark.parametrize(
    ("provider", "job"),
    [
        ("anthropic", "embeddings"),
        ("deepseek", "rerank"),
        ("perplexity", "embeddings"),
    ],
)
async def test_a_provider_without_the_capability_answers_400(
    redis_url: str, fleet: FleetConfig, provider: str, job: str
) -> None:
    base = fields(trace_id())
    if job == "embeddings":
        request = EmbeddingsRequest(provider=provider, model="m", input="hi")
        event = await run(redis_url, fleet, provider, EmbeddingsJob(**base, request=request))
    else:
        rerank = RerankRequest(provider=provider, model="m", query="q", documents=["d"])
        event = await run(redis_url, fleet, provider, RerankJob(**base, request=rerank))

    assert isinstance(event, ErrorEvent), event
    assert (event.status, event.type) == (400, "validation_error")
    assert event.details["provider"] == provider


@pytest.mark.parametrize(
    ("provider", "model", "fail", "status", "error_type"),
    [
        ("nvidia_nim", "nvidia/nv-embedqa-e5-v5", "401", 502, "provider_error"),
        ("nvidia_nim", "nvidia/nv-embedqa-e5-v5", "429", 429, "rate_limit_error"),
        ("huggingface", "BAAI/bge-large-en-v1.5", "503", 503, "provider_error"),
        ("litellm", "text-embedding-3-small", "500", 502, "provider_error"),
    ],
)
async def test_embedding_failures_are_mapped(
    redis_url: str,
    fleet: FleetConfig,
    provider: str,
    model: str,
    fail: str,
    status: int,
    error_type: str,
) -> None:
    request = EmbeddingsRequest(provider=provider, model=model, input=f"x [[sim fail={fail}]]")
    event = await run(
        redis_url, fleet, provider, EmbeddingsJob(**fields(trace_id()), request=request)
    )

    assert isinstance(event, ErrorEvent), event
    assert (event.status, event.type) == (status, error_type)
    assert event.details["provider"] == provider
    if fail == "429":
        assert event.retry_after == 1
    else:
        assert (
            "failed" in event.message
            or "credentials" in event.message
            or "overloaded" in event.message
        )


async def test_tei_rerank_errors_keep_tei_s_message(redis_url: str, fleet: FleetConfig) -> None:
    request = RerankRequest(
        provider="huggingface", model="m", query="q [[sim fail=500]]", documents=["d"]
    )
    event = await run(
        redis_url, fleet, "huggingface", RerankJob(**fields(trace_id()), request=request)
    )

    assert isinstance(event, ErrorEvent), event
    assert event.status == 502
    assert "Hugging Face failed" in event.message
    assert "{" not in event.message  # the TEI `error` text, not the raw body


async def test_queue_keeps_working_after_many_jobs(redis_url: str, fleet: FleetConfig) -> None:
    jobs = [ModelsJob(**fields(trace_id())) for _ in range(5)]
    events = await asyncio.gather(*(run(redis_url, fleet, "deepseek", job) for job in jobs))
    assert all(isinstance(e, ModelsResult) for e in events)
