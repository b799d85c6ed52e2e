"""Embeddings and rerank for the providers that offer them (docs/providers.md §4-6, §8, §10.1).

embeddings  nvidia_nim   {base}/embeddings, `input_type` (default query), `truncate`
            litellm      {base}/embeddings, OpenAI shape
            openrouter   {base}/embeddings, OpenAI shape
            huggingface  {base}/hf-inference/models/<model>/pipeline/feature-extraction
rerank      nvidia_nim   hosted: {retrieval}/retrieval/<model path, '.' -> '_'>/reranking;
                         self-hosted (no retrieval URL): {base}/ranking; logits either way
            huggingface  {TEI}/rerank (HUGGINGFACE_TEI_URL), scores
            litellm      {base}/rerank, Cohere shape
"""

import math
from typing import TYPE_CHECKING, Any

from services.workers.providers.retrieval_shapes import (
    pooled_vectors,
    ranked_results,
    sigmoid,
    sorted_openai_vectors,
)
from services.workers.providers.shapes import OpenAIEmbeddings
from shared.errors import InvalidRequest
from shared.identifiers import model_path
from shared.messages import EmbeddingsResult, RerankResultEvent
from shared.schemas import EmbeddingsRequest, RerankRequest, Usage

if TYPE_CHECKING:
    from services.workers.providers.base import ProviderAdapter

__all__ = ["embeddings", "nim_rerank_path", "rerank", "sigmoid"]


def estimated_usage(texts: list[str]) -> Usage:
    """Providers that report no usage (HF) get a whitespace-word estimate."""
    tokens = sum(len(text.split()) for text in texts)
    return Usage(prompt_tokens=tokens, total_tokens=tokens)


def _usage(raw: Any, texts: list[str]) -> Usage:
    if not isinstance(raw, dict) or "prompt_tokens" not in raw:
        return estimated_usage(texts)
    prompt = int(raw.get("prompt_tokens") or 0)
    return Usage(prompt_tokens=prompt, total_tokens=int(raw.get("total_tokens") or prompt))


async def embeddings(
    adapter: "ProviderAdapter", request: EmbeddingsRequest, headers: dict[str, str]
) -> EmbeddingsResult:
    texts = request.texts()
    provider = adapter.provider.id
    limit = adapter.limits.embeddings_bytes(len(texts))
    body: dict[str, Any]
    if provider == "huggingface":
        path = model_path(request.model)
        url = f"{adapter.base_url}/hf-inference/models/{path}/pipeline/feature-extraction"
        body = {"inputs": request.input, "normalize": True}
        answer = await adapter.call("POST", url, headers, body, limit=limit)
        vectors = pooled_vectors(answer, len(texts))
        usage = estimated_usage(texts)
    else:
        body = {"model": request.model, "input": texts, "encoding_format": "float"}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        if provider == "nvidia_nim":
            body["input_type"] = request.input_type or "query"
            if request.truncate is not None:
                body["truncate"] = request.truncate.upper()
        url = f"{adapter.base_url}/embeddings"
        answer = adapter.validated(
            OpenAIEmbeddings, await adapter.call("POST", url, headers, body, limit=limit)
        )
        vectors = sorted_openai_vectors(answer.get("data"))
        usage = _usage(answer.get("usage"), texts)
    if vectors is None or len(vectors) != len(texts):
        raise adapter.bad_answer(
            f"{0 if vectors is None else len(vectors)} vectors for {len(texts)} inputs"
        )
    return EmbeddingsResult(model=request.model, vectors=vectors, usage=usage)


def nim_rerank_path(model: str) -> str:
    """NIM's hosted path for a reranker: `nvidia/llama-3.2-x` is served at `nvidia/llama-3_2-x`."""
    return model.replace(".", "_")


async def rerank(
    adapter: "ProviderAdapter", request: RerankRequest, headers: dict[str, str]
) -> RerankResultEvent:
    provider = adapter.provider.id
    scored: list[tuple[int, float]]
    if provider == "nvidia_nim":
        url = (
            f"{adapter.retrieval_url}/retrieval/{model_path(nim_rerank_path(request.model))}"
            "/reranking"
            if adapter.retrieval_url
            else f"{adapter.base_url}/ranking"
        )
        body: dict[str, Any] = {
            "model": request.model,
            "query": {"text": request.query},
            "passages": [{"text": doc} for doc in request.documents],
            "truncate": "END",
        }
        answer = adapter.expect_object(await adapter.call("POST", url, headers, body))
        scored = _pairs(answer.get("rankings"), "logit", transform=sigmoid)
    elif provider == "huggingface":
        if adapter.retrieval_url is None:
            raise InvalidRequest(
                "Hugging Face reranks through a text-embeddings-inference server: "
                "set HUGGINGFACE_TEI_URL to its base URL",
                details={"provider": provider, "setting": "HUGGINGFACE_TEI_URL"},
            )
        body = {"query": request.query, "texts": request.documents, "return_text": False}
        answer = await adapter.call("POST", f"{adapter.retrieval_url}/rerank", headers, body)
        scored = _pairs(answer, "score")
    else:
        body = {
            "model": request.model,
            "query": request.query,
            "documents": request.documents,
            "return_documents": False,
        }
        if request.top_n is not None:
            body["top_n"] = request.top_n
        url = f"{adapter.base_url}/rerank"
        answer = adapter.expect_object(await adapter.call("POST", url, headers, body))
        scored = _pairs(answer.get("results"), "relevance_score")
    results = ranked_results(scored, request)
    if results is None:
        raise adapter.bad_answer("rerank results pointing outside the documents")
    return RerankResultEvent(results=results)


def _pairs(items: Any, score_key: str, transform: Any = None) -> list[tuple[int, float]]:
    pairs = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        index, score = item.get("index"), item.get(score_key)
        if isinstance(index, int) and isinstance(score, int | float) and math.isfinite(score):
            pairs.append((index, float(transform(score) if transform else score)))
    return pairs
