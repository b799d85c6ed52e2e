"""`POST /api/v1/embeddings` and `POST /api/v1/rerank` through the whole fleet."""

import secrets

import httpx
import pytest

from services.simulator import retrieval
from tests.e2e.helpers import assert_envelope, auth, upstream_record

EMBEDDERS = [
    ("nvidia_nim", "nvidia/nv-embedqa-e5-v5"),
    ("huggingface", "BAAI/bge-large-en-v1.5"),
    ("litellm", "text-embedding-3-small"),
    ("openrouter", "openai/text-embedding-3-small"),
]
RERANKERS = [
    ("nvidia_nim", "nvidia/llama-3.2-nv-rerankqa-1b-v2"),
    ("huggingface", "BAAI/bge-reranker-large"),
    ("litellm", "rerank"),
]
QUERY = "What is machine learning?"
DOCUMENTS = [
    "Deep learning uses neural networks.",
    "Machine learning is a subset of AI.",
    "Supervised learning requires labeled data.",
    "What is machine learning? It is learning from data.",
]


def embeddings_body(provider: str, model: str, text: str | list[str]) -> dict[str, object]:
    body: dict[str, object] = {"provider": provider, "model": model, "input": text}
    if provider == "nvidia_nim":
        body["input_type"] = "query"
    return body


def expected_order() -> list[int]:
    return [index for index, _ in retrieval.ranked(QUERY, DOCUMENTS)]


@pytest.mark.parametrize(("provider", "model"), EMBEDDERS)
async def test_a_string_input_gets_one_vector(
    edge: httpx.AsyncClient, user_token: str, provider: str, model: str
) -> None:
    text = "The quick brown fox jumps over the lazy dog"
    body = embeddings_body(provider, model, text)
    response = await edge.post("/api/v1/embeddings", json=body, headers=auth(user_token))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["embeddings"] == pytest.approx(retrieval.vector(text), abs=1e-5)
    assert answer["model"] == model
    assert isinstance(answer["usage"]["total_tokens"], int)


@pytest.mark.parametrize(("provider", "model"), EMBEDDERS)
async def test_a_list_input_gets_one_vector_per_input(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    provider: str,
    model: str,
) -> None:
    texts = ["first text", "second text", "third one"]
    trace = f"req_test_{secrets.token_hex(6)}"
    body = embeddings_body(provider, model, texts)
    response = await edge.post("/api/v1/embeddings", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    vectors = response.json()["embeddings"]
    assert len(vectors) == len(texts)
    for vector, text in zip(vectors, texts, strict=True):
        assert vector == pytest.approx(retrieval.vector(text), abs=1e-5)
    record = await upstream_record(simulator, trace)
    assert record["body"]["inputs" if provider == "huggingface" else "input"] == texts
    if provider == "nvidia_nim":
        assert record["body"]["input_type"] == "query"
    if provider == "openrouter":
        assert record["path"] == "/openrouter/embeddings"
        assert record["body"]["model"] == model


@pytest.mark.parametrize(("provider", "model"), RERANKERS)
async def test_rerank_sorts_by_score_and_keeps_top_n(
    edge: httpx.AsyncClient, user_token: str, provider: str, model: str
) -> None:
    body = {
        "provider": provider,
        "model": model,
        "query": QUERY,
        "documents": DOCUMENTS,
        "top_n": 2,
    }
    response = await edge.post("/api/v1/rerank", json=body, headers=auth(user_token))

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == expected_order()[:2]
    assert [r["document"] for r in results] == [DOCUMENTS[r["index"]] for r in results]
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[1]


@pytest.mark.parametrize(("provider", "model"), RERANKERS)
async def test_rerank_without_top_n_ranks_every_document(
    edge: httpx.AsyncClient, user_token: str, provider: str, model: str
) -> None:
    body = {"provider": provider, "model": model, "query": QUERY, "documents": DOCUMENTS}
    response = await edge.post("/api/v1/rerank", json=body, headers=auth(user_token))

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert sorted(r["index"] for r in results) == list(range(len(DOCUMENTS)))
    assert [r["index"] for r in results][:2] == expected_order()[:2]


async def test_the_specs_rerank_example_succeeds(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    """The spec's request verbatim: NIM's hosted path spelling of the model (`3_2`), which its
    /models does not list (it lists `llama-3.2-...`; docs/providers.md §6)."""
    documents = [
        "Machine learning is a subset of AI...",
        "Deep learning uses neural networks...",
        "Supervised learning requires labeled data...",
    ]
    query = "What is machine learning?"
    body = {
        "provider": "nvidia_nim",
        "model": "nvidia/llama-3_2-nv-rerankqa-1b-v2",
        "query": query,
        "documents": documents,
        "top_n": 2,
    }
    trace = f"req_test_{secrets.token_hex(6)}"
    response = await edge.post("/api/v1/rerank", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    ranked = [index for index, _ in retrieval.ranked(query, documents)]
    assert [r["index"] for r in results] == ranked[:2]
    assert [r["document"] for r in results] == [documents[r["index"]] for r in results]
    assert results[0]["relevance_score"] > results[1]["relevance_score"]
    record = await upstream_record(simulator, trace)
    assert record["path"].endswith("/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking")
    assert record["body"]["passages"] == [{"text": d} for d in documents]


async def test_a_chat_only_provider_gets_400_naming_those_that_can(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    body = {"provider": "deepseek", "model": "deepseek-chat", "input": "hello"}
    response = await edge.post("/api/v1/embeddings", json=body, headers=auth(user_token))
    error = assert_envelope(response, 400, "validation_error")
    assert error["details"]["available_providers"] == [
        "huggingface",
        "litellm",
        "nvidia_nim",
        "openrouter",
    ]

    body = {"provider": "anthropic", "model": "x", "query": "q", "documents": ["d"]}
    response = await edge.post("/api/v1/rerank", json=body, headers=auth(user_token))
    error = assert_envelope(response, 400, "validation_error")
    assert error["details"]["available_providers"] == ["huggingface", "litellm", "nvidia_nim"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/embeddings", {"provider": "nope", "model": "m", "input": "x"}),
        ("/api/v1/embeddings", {"provider": "litellm", "model": "m", "input": []}),
        (
            "/api/v1/rerank",
            {"provider": "litellm", "model": "rerank", "query": "q", "documents": []},
        ),
    ],
)
async def test_bad_retrieval_requests_get_400(
    edge: httpx.AsyncClient, user_token: str, path: str, body: dict[str, object]
) -> None:
    response = await edge.post(path, json=body, headers=auth(user_token))
    assert_envelope(response, 400, "validation_error")


async def test_retrieval_needs_a_token(edge: httpx.AsyncClient) -> None:
    body = embeddings_body(*EMBEDDERS[0], "hello")
    assert_envelope(await edge.post("/api/v1/embeddings", json=body), 401, "authentication_error")
