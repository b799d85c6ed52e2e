"""A model name cannot steer a worker to another path of its provider.

A Hugging Face embeddings `model` of `../../v1/chat/completions?x=` once made the worker POST to
the provider's chat path with the operator's key. Model names are checked where the body is
parsed (no `.`/`..` or empty segments, no `?`, `#`, `%` or spaces: shared/identifiers.py), and
workers build path segments with a real URL encoder (`model_path`), so such a request gets a
400 and nothing is sent upstream.
"""

from collections.abc import Callable

import httpx
import pytest

from shared.errors import InvalidRequest
from shared.identifiers import model_path
from tests.e2e.helpers import auth, new_trace

TRAVERSALS = [
    "../../v1/chat/completions?x=",
    "BAAI/../../../v1/chat/completions",
    "BAAI/bge-large-en-v1.5?x=1#",
    "BAAI/bge%2f..%2f..",
    "./BAAI/bge-large-en-v1.5",
]


async def _sent_upstream(simulator: httpx.AsyncClient, trace: str) -> list[object]:
    response = await simulator.get("/_sim/requests", params={"trace_id": trace})
    requests: list[object] = response.json()["requests"]
    return requests


@pytest.mark.parametrize("model", TRAVERSALS)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/embeddings", lambda m: {"provider": "huggingface", "model": m, "input": "hi"}),
        ("/v1/embeddings", lambda m: {"model": f"huggingface/{m}", "input": "hi"}),
        (
            "/api/v1/rerank",
            lambda m: {"provider": "nvidia_nim", "model": m, "query": "q", "documents": ["d"]},
        ),
    ],
)
async def test_a_path_in_a_model_name_gets_400_and_reaches_no_provider(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    path: str,
    body: Callable[[str], dict[str, object]],
    model: str,
) -> None:
    trace = new_trace()
    response = await edge.post(path, json=body(model), headers=auth(user_token, trace))
    assert response.status_code == 400, response.text
    assert await _sent_upstream(simulator, trace) == []


def test_model_path_encodes_each_segment() -> None:
    assert model_path("BAAI/bge-large-en-v1.5") == "BAAI/bge-large-en-v1.5"
    assert model_path("org/a b?c#d%e") == "org/a%20b%3Fc%23d%25e"
    for climbing in ("../x", "a/../b", "a//b", "./a"):
        with pytest.raises(InvalidRequest):
            model_path(climbing)
