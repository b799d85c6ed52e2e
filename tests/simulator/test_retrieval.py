"""Embedding and rerank routes: shapes, determinism, predictable ordering, recording."""

import math
from typing import Any

import httpx
import openai
import pytest

AUTH = {"authorization": "Bearer sk-test"}
QUERY = "GPU memory bandwidth"
DOCUMENTS = [
    "Bananas are yellow",
    "The H100 GPU has huge memory bandwidth",
    "GPU prices rose",
]


def _post(sim_url: str, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"{sim_url}{path}", headers={**AUTH, **headers}, json=body)


@pytest.mark.parametrize("provider", ["litellm", "nvidia_nim", "openrouter", "huggingface"])
def test_openai_sdk_embeddings_are_deterministic(sim_url: str, provider: str) -> None:
    client = openai.OpenAI(base_url=f"{sim_url}/{provider}/v1", api_key="sk-test", max_retries=0)
    extra = {"input_type": "query"} if provider == "nvidia_nim" else {}
    first = client.embeddings.create(
        model="nvidia/nv-embedqa-e5-v5", input=["alpha", "beta"], extra_body=extra
    )
    again = client.embeddings.create(
        model="nvidia/nv-embedqa-e5-v5", input="alpha", encoding_format="float", extra_body=extra
    )

    assert [d.index for d in first.data] == [0, 1]
    assert all(len(d.embedding) == 16 for d in first.data)
    assert first.data[0].embedding == pytest.approx(again.data[0].embedding, abs=1e-6)
    assert first.data[0].embedding != first.data[1].embedding
    assert math.isclose(sum(v * v for v in again.data[0].embedding), 1.0, abs_tol=1e-4)
    assert first.usage.prompt_tokens == 2


def test_nim_embeddings_need_input_type(sim_url: str) -> None:
    body = {"model": "nvidia/nv-embedqa-e5-v5", "input": ["q"], "truncate": "END"}
    missing = _post(sim_url, "/nvidia_nim/v1/embeddings", body)
    ok = _post(sim_url, "/nvidia_nim/v1/embeddings", {**body, "input_type": "passage"})
    assert missing.status_code == 400
    assert set(missing.json()) >= {"status", "title", "detail"}
    assert "input_type" in missing.json()["detail"]
    assert ok.json()["object"] == "list"
    assert ok.json()["data"][0]["object"] == "embedding"


def test_litellm_cohere_rerank(sim_url: str, trace_id: str) -> None:
    body = {"model": "rerank", "query": QUERY, "documents": DOCUMENTS, "top_n": 2}
    plain = _post(sim_url, "/litellm/rerank", body, **{"x-request-id": trace_id}).json()
    documents = _post(sim_url, "/litellm/v1/rerank", {**body, "return_documents": True}).json()

    assert [r["index"] for r in plain["results"]] == [1, 2]
    assert plain["results"][0]["relevance_score"] > plain["results"][1]["relevance_score"]
    assert all(0 <= r["relevance_score"] <= 1 for r in plain["results"])
    assert "document" not in plain["results"][0]
    assert documents["results"][0]["document"] == {"text": DOCUMENTS[1]}
    assert documents["results"] == [
        {**r, "document": {"text": DOCUMENTS[r["index"]]}} for r in plain["results"]
    ]
    records = httpx.get(f"{sim_url}/_sim/requests", params={"trace_id": trace_id}).json()
    assert records["requests"][0]["body"]["top_n"] == 2
    assert records["requests"][0]["path"] == "/litellm/rerank"


def test_nim_reranking(sim_url: str) -> None:
    body = {
        "model": "nvidia/llama-3.2-nv-rerankqa-1b-v2",
        "query": {"text": QUERY},
        "passages": [{"text": d} for d in DOCUMENTS],
        "truncate": "END",
    }
    path = "/nvidia_nim/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking"
    rankings = _post(sim_url, path, body).json()["rankings"]
    invalid = _post(sim_url, path, {"model": "m", "query": "not an object"})
    unauthorized = httpx.post(f"{sim_url}{path}", json=body)

    assert [r["index"] for r in rankings] == [1, 2, 0]
    assert rankings == sorted(rankings, key=lambda r: -r["logit"])
    assert rankings[-1]["logit"] < 0 < rankings[0]["logit"]
    assert invalid.status_code == 400
    assert unauthorized.status_code == 401
    assert unauthorized.json()["title"] == "Unauthorized"


def test_hf_feature_extraction(sim_url: str, trace_id: str) -> None:
    path = "/huggingface/hf-inference/models/BAAI/bge-large-en-v1.5/pipeline/feature-extraction"
    headers = {"x-use-cache": "false", "x-request-id": trace_id}
    body = {"inputs": "alpha", "options": {"use_cache": False}}
    single = _post(sim_url, path, body, **headers).json()
    batch = _post(sim_url, path, {"inputs": ["alpha", "beta"], "normalize": True}).json()
    raw = _post(sim_url, path, {"inputs": ["alpha"], "normalize": False}).json()
    empty = _post(sim_url, path, {"inputs": []})

    assert isinstance(single[0], float)
    assert len(single) == 16
    assert batch[0] == single
    assert len(batch) == 2
    assert raw[0] != single
    assert empty.status_code == 413
    assert empty.json()["error_type"] == "Validation"
    record = httpx.get(f"{sim_url}/_sim/requests", params={"trace_id": trace_id}).json()
    assert record["requests"][0]["headers"]["x-use-cache"] == "false"
    assert record["requests"][0]["body"]["options"] == {"use_cache": False}


def test_tei_rerank(sim_url: str) -> None:
    body = {"query": QUERY, "texts": DOCUMENTS}
    scores = _post(sim_url, "/huggingface/rerank", body).json()
    raw = _post(sim_url, "/huggingface/rerank", {**body, "raw_scores": True, "return_text": True})

    assert [s["index"] for s in scores] == [1, 2, 0]
    assert all(0 < s["score"] < 1 for s in scores)
    assert set(scores[0]) == {"index", "score"}
    assert raw.json()[0]["text"] == DOCUMENTS[1]
    assert raw.json()[0]["score"] > 1


def test_embedding_failure_directive(sim_url: str) -> None:
    body = {"model": "gpt-4o", "input": "x [[sim fail=429]]"}
    response = _post(sim_url, "/litellm/embeddings", body)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "429"
