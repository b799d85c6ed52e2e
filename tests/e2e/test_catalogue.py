"""`GET /api/v1/providers`: model lists from each provider's worker pool, cached; validation."""

import asyncio
import secrets

import httpx
import pytest
from redis.asyncio import Redis

from services.fleet.plan import FleetConfig
from services.simulator.anthropic_dialect import MODELS as ANTHROPIC_MODELS
from services.simulator.registry import PROFILES_BY_ID
from shared.providers import PROVIDERS
from shared.redis_keys import RedisKeys
from tests.e2e.helpers import assert_envelope, auth, chat_body, running_edge

SIMULATED_MODELS = {
    "anthropic": [m[0] for m in ANTHROPIC_MODELS],
    **{p: list(profile.models) for p, profile in PROFILES_BY_ID.items()},
}


async def model_list_requests(simulator: httpx.AsyncClient) -> int:
    records = (await simulator.get("/_sim/requests")).json()["requests"]
    return sum(1 for r in records if r["method"] == "GET" and r["path"].endswith("/models"))


async def test_every_provider_is_listed_with_its_models_and_capabilities(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    response = await edge.get("/api/v1/providers", headers=auth(user_token))

    assert response.status_code == 200, response.text
    listed = {p["id"]: p for p in response.json()["providers"]}
    assert list(listed) == list(PROVIDERS)
    for provider_id, provider in PROVIDERS.items():
        entry = listed[provider_id]
        assert (entry["id"], entry["name"], entry["status"]) == (
            provider_id,
            provider.name,
            "active",
        )
        assert entry["capabilities"] == list(provider.capabilities)
        # Perplexity has no list endpoint: its worker answers with the documented list.
        assert set(SIMULATED_MODELS[provider_id]) <= set(entry["models"]), provider_id
        if provider_id != "perplexity":
            assert entry["models"] == SIMULATED_MODELS[provider_id]


async def test_providers_need_a_token(edge: httpx.AsyncClient) -> None:
    assert_envelope(await edge.get("/api/v1/providers"), 401, "authentication_error")


async def test_model_lists_are_cached_for_an_hour(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, fleet: FleetConfig
) -> None:
    first = await edge.get("/api/v1/providers", headers=auth(user_token))
    assert first.status_code == 200, first.text
    fetched = await model_list_requests(simulator)

    second = await edge.get("/api/v1/providers", headers=auth(user_token))

    assert second.json() == first.json()
    assert await model_list_requests(simulator) == fetched
    keys = RedisKeys(fleet.redis_prefix)
    redis = Redis.from_url(fleet.redis_url)
    try:
        for provider in PROVIDERS:
            ttl = await redis.ttl(keys.models(provider))
            assert 0 < ttl <= 3600, (provider, ttl)
    finally:
        await redis.aclose()


async def test_an_edge_refreshes_every_model_list_before_it_expires(
    fleet: FleetConfig, simulator: httpx.AsyncClient
) -> None:
    keys = RedisKeys(fleet.redis_prefix)
    lists = [keys.models(p) for p in PROVIDERS]
    redis = Redis.from_url(fleet.redis_url)
    try:
        await redis.delete(keys.models_refresh_lease(), *lists)
        fetched = await model_list_requests(simulator)
        with running_edge(fleet, MODEL_REFRESH_INTERVAL="1s"):
            for _ in range(150):  # no request asks for a list: the edge fetches them itself
                if await redis.exists(*lists) == len(lists):
                    break
                await asyncio.sleep(0.1)
            ttls = [await redis.ttl(key) for key in lists]
        assert all(3500 < ttl <= 3600 for ttl in ttls), dict(zip(PROVIDERS, ttls, strict=True))
        # Every provider with a list endpoint was called (Perplexity has none).
        assert await model_list_requests(simulator) >= fetched + len(PROVIDERS) - 1
    finally:
        await redis.aclose()


async def test_an_unknown_model_gets_400_listing_the_available_ones(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    body = chat_body("deepseek", "deepseek-wizard", "hi")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))

    error = assert_envelope(response, 400, "validation_error")
    assert error["details"] == {
        "provider": "deepseek",
        "model": "deepseek-wizard",
        "available_models": SIMULATED_MODELS["deepseek"],
        "code": "model_not_found",
    }


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/embeddings", {"model": "no-such-embedder", "input": "hello"}),
        ("/api/v1/rerank", {"model": "no-such-reranker", "query": "q", "documents": ["d"]}),
    ],
)
async def test_an_unknown_retrieval_model_gets_400_where_the_list_names_them(
    edge: httpx.AsyncClient, user_token: str, path: str, body: dict[str, object]
) -> None:
    """LiteLLM's model list names every model group, embedders and rerankers included."""
    body = {"provider": "litellm", **body}
    response = await edge.post(path, json=body, headers=auth(user_token))

    error = assert_envelope(response, 400, "validation_error")
    assert error["details"]["available_models"] == SIMULATED_MODELS["litellm"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/api/v1/embeddings",
            {"provider": "nvidia_nim", "model": "nvidia/nv-embed-v1", "input_type": "query"},
        ),
        (
            "/api/v1/embeddings",
            {"provider": "openrouter", "model": "openai/text-embedding-3-large"},
        ),
        ("/api/v1/embeddings", {"provider": "huggingface", "model": "intfloat/e5-small-v2"}),
        ("/api/v1/rerank", {"provider": "nvidia_nim", "model": "nvidia/nv-rerankqa-mistral-4b-v3"}),
    ],
    ids=["nim-embeddings", "openrouter-embeddings", "hf-embeddings", "nim-rerank"],
)
async def test_an_unlisted_retrieval_model_is_left_to_the_provider(
    edge: httpx.AsyncClient, user_token: str, path: str, body: dict[str, object]
) -> None:
    """NIM's hosted retrieval models may be missing from its /models, Hugging Face and
    OpenRouter list chat models (docs/providers.md §4, §6, §8): their lists cannot reject these."""
    for provider_models in SIMULATED_MODELS.values():
        assert body["model"] not in provider_models
    texts = (
        {"input": "hello"} if path.endswith("embeddings") else {"query": "q", "documents": ["d"]}
    )
    response = await edge.post(path, json={**body, **texts}, headers=auth(user_token))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("provider", "model"), [("xai", "grok-3"), ("litellm", "gpt-4o-mini")])
async def test_a_listed_model_chats(
    edge: httpx.AsyncClient, user_token: str, provider: str, model: str
) -> None:
    trace = f"req_test_{secrets.token_hex(6)}"
    body = chat_body(provider, model, "Hello there", max_tokens=50)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


async def test_every_route_is_in_the_openapi_schema(edge: httpx.AsyncClient) -> None:
    paths = (await edge.get("/openapi.json")).json()["paths"]
    for path, method in [
        ("/api/v1/providers", "get"),
        ("/api/v1/embeddings", "post"),
        ("/api/v1/rerank", "post"),
        ("/v1/chat/completions", "post"),
        ("/v1/embeddings", "post"),
        ("/v1/models", "get"),
    ]:
        operation = paths[path][method]
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema["$ref"], path
        assert method == "get" or operation["requestBody"], path
