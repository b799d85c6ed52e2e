"""Embedding and rerank routes (LiteLLM, NVIDIA NIM, OpenRouter, Hugging Face feature
extraction and TEI), answered from `retrieval`; errors in each provider's shape."""

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from services.simulator import retrieval, wire
from services.simulator.config import SimulatorConfig
from services.simulator.openai_dialect import auth_problem, error_response
from services.simulator.openai_profile import OpenAIProfile
from services.simulator.recorder import record_request
from services.simulator.registry import HUGGINGFACE, LITELLM, NVIDIA_NIM, OPENROUTER
from services.simulator.replies import parse_directives

Parsed = tuple[list[str], str | None]
NIM_INPUT_TYPES = ("query", "passage")
NIM_TRUNCATE = ("NONE", "START", "END")
# Answers held for NVCF polling (hosted NIM), oldest dropped first.
MAX_PENDING = 1000


class PendingAnswers:
    """Hosted NIM's 202 mode: an answer kept under its NVCF request id until polled enough."""

    def __init__(self) -> None:
        self.answers: OrderedDict[str, tuple[int, Any]] = OrderedDict()

    def hold(self, polls: int, answer: Any) -> str:
        request_id = str(uuid.uuid4())
        self.answers[request_id] = (polls, answer)
        while len(self.answers) > MAX_PENDING:
            self.answers.popitem(last=False)
        return request_id

    def poll(self, request_id: str) -> tuple[bool, Any]:
        """(done, answer); KeyError for an id never given or already fetched."""
        polls, answer = self.answers[request_id]
        if polls > 1:
            self.answers[request_id] = (polls - 1, answer)
            return False, None
        del self.answers[request_id]
        return True, answer


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def _texts(items: Any) -> list[str] | None:
    """Documents given as strings or `{"text": ...}` objects."""
    if not isinstance(items, list) or not items:
        return None
    texts = [item.get("text") if isinstance(item, dict) else item for item in items]
    return (
        [t for t in texts if isinstance(t, str)] if all(isinstance(t, str) for t in texts) else None
    )


async def _answer(
    request: Request,
    profile: OpenAIProfile,
    parse: Callable[[dict[str, Any]], Parsed],
    answer: Callable[[dict[str, Any]], Any],
    invalid_status: int = 400,
    pollable: bool = False,
) -> Response:
    """Record, authenticate, validate, apply `[[sim ...]]` directives found in the texts
    (`pending=N` on a `pollable` route: 202 with `NVCF-REQID`, the answer polled N times)."""
    config: SimulatorConfig = request.app.state.config
    body = await wire.json_body(request)
    record = record_request(request, profile.id, body)
    problem = auth_problem(request, profile)
    if problem is None:
        texts, invalid = parse(body) if isinstance(body, dict) else ([], "Invalid JSON body")
        if invalid:
            problem = error_response(profile, invalid_status, message=invalid)
        else:
            key = wire.bearer_token(request)
            directives = parse_directives("\n".join(texts), config, key)
            await asyncio.sleep(directives.latency_s)
            if isinstance(directives.fail, int):
                model = body.get("model")
                problem = error_response(
                    profile, directives.fail, key, model=model if isinstance(model, str) else ""
                )
    if problem is not None:
        record.status, record.outcome = problem.status_code, "error"
        return problem
    if pollable and directives.pending:
        pending: PendingAnswers = request.app.state.pending
        request_id = pending.hold(directives.pending, answer(body))
        record.status = 202
        return Response(status_code=202, headers={"NVCF-REQID": request_id})
    return wire.json_response(answer(body))


async def _nvcf_status(request: Request) -> Response:
    """`GET .../v2/nvcf/pexec/status/{id}`: 202 until the held answer is ready, then 200."""
    record_request(request, NVIDIA_NIM.id, None)
    problem = auth_problem(request, NVIDIA_NIM)
    if problem is not None:
        return problem
    request_id = request.path_params["request_id"]
    pending: PendingAnswers = request.app.state.pending
    try:
        done, answer = pending.poll(request_id)
    except KeyError:
        return error_response(NVIDIA_NIM, 404, message=f"Request {request_id} not found")
    if not done:
        return Response(status_code=202, headers={"NVCF-REQID": request_id})
    return wire.json_response(answer)


def _parse_embeddings(body: dict[str, Any]) -> Parsed:
    inputs = _strings(body.get("input"))
    if not isinstance(body.get("model"), str):
        return [], "Missing required field `model`"
    return (inputs, None) if inputs is not None else ([], "`input` must be a string or list")


def _parse_nim_embeddings(body: dict[str, Any]) -> Parsed:
    texts, invalid = _parse_embeddings(body)
    if invalid:
        return texts, invalid
    if "embedqa" in body["model"] and body.get("input_type") not in NIM_INPUT_TYPES:
        return texts, "'input_type' parameter is required for asymmetric models"
    if body.get("truncate", "NONE") not in NIM_TRUNCATE:
        return texts, "'truncate' must be one of NONE, START, END"
    return texts, None


def _embeddings(body: dict[str, Any]) -> Any:
    texts = _strings(body["input"]) or []
    dimensions = body.get("dimensions")
    size = dimensions if isinstance(dimensions, int) and dimensions > 0 else retrieval.DIMENSIONS
    base64 = body.get("encoding_format") == "base64"
    data = [
        {
            "index": i,
            "embedding": retrieval.as_base64(vector) if base64 else vector,
            "object": "embedding",
        }
        for i, vector in enumerate(retrieval.vector(text, size) for text in texts)
    ]
    tokens = retrieval.token_count(texts)
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _parse_cohere(body: dict[str, Any]) -> Parsed:
    query, documents = body.get("query"), _texts(body.get("documents"))
    if not isinstance(query, str) or documents is None:
        return [], "`query` (string) and `documents` (non-empty list) are required"
    return [query, *documents], None


def _cohere_rerank(body: dict[str, Any]) -> Any:
    documents = _texts(body["documents"]) or []
    ranking = retrieval.ranked(body["query"], documents)
    top_n = body.get("top_n")
    if isinstance(top_n, int) and top_n > 0:
        ranking = ranking[:top_n]
    results = []
    for index, logit in ranking:
        result: dict[str, Any] = {"index": index, "relevance_score": retrieval.sigmoid(logit)}
        if body.get("return_documents"):
            result["document"] = {"text": documents[index]}
        results.append(result)
    tokens = retrieval.token_count([body["query"], *documents])
    return {
        "id": str(uuid.uuid4()),
        "results": results,
        "meta": {
            "billed_units": {"search_units": 1},
            "tokens": {"input_tokens": tokens, "output_tokens": 0},
        },
    }


def _parse_nim_rerank(body: dict[str, Any]) -> Parsed:
    query = body.get("query")
    text = query.get("text") if isinstance(query, dict) else None
    passages = _texts(body.get("passages"))
    if not isinstance(text, str) or passages is None or not isinstance(body.get("model"), str):
        return [], "`model`, `query.text` and `passages[].text` are required"
    if body.get("truncate", "NONE") not in ("NONE", "END"):
        return [], "'truncate' must be one of NONE, END"
    return [text, *passages], None


def _nim_rerank(body: dict[str, Any]) -> Any:
    passages = _texts(body["passages"]) or []
    ranking = retrieval.ranked(body["query"]["text"], passages)
    return {"rankings": [{"index": index, "logit": logit} for index, logit in ranking]}


def _parse_features(body: dict[str, Any]) -> Parsed:
    inputs = _strings(body.get("inputs"))
    return (inputs, None) if inputs else ([], "Input validation error: `inputs` cannot be empty")


def _features(body: dict[str, Any], flat_single: bool) -> Any:
    normalize = body.get("normalize", True) is not False
    inputs = body["inputs"]
    if isinstance(inputs, str) and flat_single:
        return retrieval.vector(inputs, normalize=normalize)
    return [retrieval.vector(text, normalize=normalize) for text in _strings(inputs) or []]


def _parse_tei_rerank(body: dict[str, Any]) -> Parsed:
    query, texts = body.get("query"), _texts(body.get("texts"))
    if not isinstance(query, str) or texts is None:
        return [], "Input validation error: `query` and `texts` cannot be empty"
    return [query, *texts], None


def _tei_rerank(body: dict[str, Any]) -> Any:
    texts = _texts(body["texts"]) or []
    results = []
    for index, logit in retrieval.ranked(body["query"], texts):
        score = logit if body.get("raw_scores") else retrieval.sigmoid(logit)
        result: dict[str, Any] = {"index": index, "score": score}
        if body.get("return_text"):
            result["text"] = texts[index]
        results.append(result)
    return results


def build_router() -> APIRouter:
    router = APIRouter()

    def route(
        path: str,
        profile: OpenAIProfile,
        parse: Any,
        answer: Any,
        status: int = 400,
        pollable: bool = False,
    ) -> None:
        async def handler(request: Request) -> Response:
            return await _answer(request, profile, parse, answer, status, pollable)

        router.add_api_route(path, handler, methods=["POST"])

    for prefix in ("", "/v1"):
        route(f"/litellm{prefix}/embeddings", LITELLM, _parse_embeddings, _embeddings)
        route(f"/litellm{prefix}/rerank", LITELLM, _parse_cohere, _cohere_rerank)
        route(f"/openrouter{prefix}/embeddings", OPENROUTER, _parse_embeddings, _embeddings)
        route(f"/nvidia_nim{prefix}/embeddings", NVIDIA_NIM, _parse_nim_embeddings, _embeddings)
        route(f"/huggingface{prefix}/embeddings", HUGGINGFACE, _parse_embeddings, _embeddings)
    for path in ("{model_path:path}/reranking", "reranking"):
        route(
            f"/nvidia_nim/v1/retrieval/nvidia/{path}",
            NVIDIA_NIM,
            _parse_nim_rerank,
            _nim_rerank,
            pollable=True,
        )
    # A self-hosted NIM ranks at its own /v1/ranking, same bodies, no 202 mode.
    for prefix in ("", "/v1"):
        route(f"/nvidia_nim{prefix}/ranking", NVIDIA_NIM, _parse_nim_rerank, _nim_rerank)
    router.add_api_route(
        "/nvidia_nim/v2/nvcf/pexec/status/{request_id}", _nvcf_status, methods=["GET"]
    )
    route(
        "/huggingface/hf-inference/models/{org}/{model}/pipeline/feature-extraction",
        HUGGINGFACE,
        _parse_features,
        lambda body: _features(body, flat_single=True),
        413,
    )
    route("/huggingface/embed", HUGGINGFACE, _parse_features, lambda b: _features(b, False), 413)
    route("/huggingface/rerank", HUGGINGFACE, _parse_tei_rerank, _tei_rerank, 413)
    return router
