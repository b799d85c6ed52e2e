"""Pure shape handling for embeddings and rerank answers (docs/providers.md §8b, §10.1)."""

import math
from typing import Any

from shared.schemas import RerankRequest, RerankResult


def sigmoid(logit: float) -> float:
    """NIM's unbounded logit as a 0..1 relevance score; monotonic, so the order is kept."""
    if logit >= 0:
        return 1 / (1 + math.exp(-logit))
    exp = math.exp(logit)
    return exp / (1 + exp)


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )


def _mean(rows: list[list[float]]) -> list[float]:
    return [sum(column) / len(rows) for column in zip(*rows, strict=True)] if rows else []


def pooled_vectors(answer: Any, inputs: int) -> list[list[float]] | None:
    """One vector per input from Hugging Face feature extraction, whatever its depth.

    1-D: the single input's vector. 2-D: a vector per input, or (one input) token vectors to
    mean-pool. 3-D `[input][token][dim]`: token vectors, mean-pooled per input.
    """
    if not isinstance(answer, list) or not answer:
        return None
    if _is_vector(answer):
        return [[float(v) for v in answer]]
    if all(_is_vector(row) for row in answer):
        rows = [[float(v) for v in row] for row in answer]
        if inputs == 1 and len(rows) != 1:
            return [_mean(rows)]
        return rows
    if all(isinstance(item, list) and all(_is_vector(row) for row in item) for item in answer):
        return [_mean([[float(v) for v in row] for row in item]) for item in answer]
    return None


def sorted_openai_vectors(data: Any) -> list[list[float]] | None:
    """OpenAI-shape `data[{index, embedding}]` in input order (NIM may return any order)."""
    if not isinstance(data, list):
        return None
    items = [d for d in data if isinstance(d, dict) and _is_vector(d.get("embedding"))]
    if len(items) != len(data):
        return None
    items.sort(key=lambda d: int(d.get("index") or 0))
    return [[float(v) for v in d["embedding"]] for d in items]


def ranked_results(
    scored: list[tuple[int, float]], request: RerankRequest
) -> list[RerankResult] | None:
    """Best first (ties keep document order), `top_n` applied here, documents attached on
    request; None when the provider named a document that does not exist."""
    count = len(request.documents)
    if any(not 0 <= index < count for index, _ in scored):
        return None
    best = sorted(scored, key=lambda pair: (-pair[1], pair[0]))
    if request.top_n is not None:
        best = best[: request.top_n]
    return [
        RerankResult(
            index=index,
            relevance_score=score,
            document=request.documents[index] if request.return_documents else None,
        )
        for index, score in best
    ]
