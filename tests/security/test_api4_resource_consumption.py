"""OWASP API4:2023 Unrestricted Resource Consumption: what one request may ask for.

What is capped: the request body (`MAX_BODY_BYTES`, announced or streamed); on every surface
the messages of a chat (`MAX_MESSAGES`), the characters of its text (`MAX_PROMPT_CHARS`), its
`max_tokens` (`MAX_OUTPUT_TOKENS`), the inputs of embeddings and rerank (`MAX_INPUTS`); the
number of tools and fallbacks, JSON depth and integer size; and the tokens of a minute
(`tokens_per_minute` of a user or gateway API key, reserved before the job is queued).
Open streams: `test_api4_open_streams.py`; upstream answers: `test_api4_upstream_answers.py`.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx

from shared.schemas import MAX_TOOLS
from tests.e2e.helpers import (
    assert_envelope,
    auth,
    chat_body,
)
from tests.security.support import register, setting_default

DEEPSEEK = ("deepseek", "deepseek-chat")
MAX_BODY_BYTES = setting_default("max_body_bytes")


async def test_a_body_over_the_limit_is_413_announced_or_streamed(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    huge = chat_body(*DEEPSEEK, "x" * (MAX_BODY_BYTES + 1))
    response = await edge.post("/api/v1/chat", json=huge, headers=auth(user_token))
    assert_envelope(response, 413, "validation_error")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"provider": "deepseek", "model": "deepseek-chat", "messages": [{"role": "user",'
        for _ in range(20):
            yield b' "content": "' + b"y" * 65_536 + b'",'
        yield b'"x": 1}]}'

    streamed = await edge.post(
        "/api/v1/chat",
        content=chunks(),
        headers=auth(user_token) | {"Content-Type": "application/json"},
    )
    assert streamed.status_code == 413, streamed.text


async def test_many_messages_or_a_huge_prompt_cannot_pass_the_body_limit(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    messages = [{"role": "user", "content": "z" * 100}] * 20_000
    for path, body in (
        ("/api/v1/chat", {"provider": "deepseek", "model": "deepseek-chat", "messages": messages}),
        ("/v1/chat/completions", {"model": "deepseek/deepseek-chat", "messages": messages}),
        (
            "/v1/messages",
            {"model": "deepseek/deepseek-chat", "max_tokens": 5, "messages": messages},
        ),
        ("/api/v1/embeddings", {"provider": "huggingface", "model": "m", "input": "e" * 2**21}),
    ):
        response = await edge.post(path, json=body, headers=auth(user_token))
        assert response.status_code == 413, (path, response.text)


async def test_bounded_lists_and_numbers(edge: httpx.AsyncClient, user_token: str) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    too_many_tools = chat_body(*DEEPSEEK, "hi", tools=[tool] * (MAX_TOOLS + 1))
    too_many_fallbacks = chat_body(*DEEPSEEK, "hi", fallbacks=["deepseek/deepseek-chat"] * 6)
    for body in (
        too_many_tools,
        too_many_fallbacks,
        chat_body(*DEEPSEEK, "hi", max_tokens=0),
        chat_body(*DEEPSEEK, "hi", max_tokens=-1),
        chat_body(*DEEPSEEK, "hi", max_tokens=2**64),  # was a 500 at the queue hop
        chat_body(*DEEPSEEK, "hi", max_tokens=10**30),
        {**chat_body(*DEEPSEEK, "hi"), "messages": []},
    ):
        response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
        assert_envelope(response, 400, "validation_error")
    documents = {"provider": "nvidia_nim", "model": "m", "query": "q", "documents": ["d"] * 1001}
    response = await edge.post("/api/v1/rerank", json=documents, headers=auth(user_token))
    assert_envelope(response, 400, "validation_error")
    hello = [{"role": "user", "content": "hi"}]
    for path, body in (
        ("/v1/chat/completions", {"model": "deepseek/deepseek-chat", "messages": hello}),
        ("/v1/messages", {"model": "deepseek/deepseek-chat", "messages": hello}),
    ):
        for field in ("max_tokens", "max_completion_tokens"):
            if path == "/v1/messages" and field == "max_completion_tokens":
                continue
            response = await edge.post(path, json={**body, field: 2**64}, headers=auth(user_token))
            assert response.status_code == 400, (path, field, response.text)


async def test_an_absurd_max_tokens_is_refused_by_the_token_budget(
    edge: httpx.AsyncClient,
) -> None:
    _, token = await register(edge)
    created = await edge.post(
        "/api/v1/api-keys",
        json={"name": "budgeted", "limits": {"tokens_per_minute": 1000}},
        headers=auth(token),
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    absurd = chat_body(*DEEPSEEK, "hi [[sim tokens=1]]", max_tokens=5000)
    response = await edge.post("/api/v1/chat", json=absurd, headers=auth(key))
    assert_envelope(response, 429, "rate_limit_error")
    assert "retry-after" in response.headers
    fits = chat_body(*DEEPSEEK, "hi [[sim tokens=1]]", max_tokens=100)
    assert (await edge.post("/api/v1/chat", json=fits, headers=auth(key))).status_code == 200


MAX_MESSAGES = setting_default("max_messages")
MAX_PROMPT_CHARS = setting_default("max_prompt_chars")
MAX_OUTPUT_TOKENS = setting_default("max_output_tokens")
MAX_INPUTS = setting_default("max_inputs")


def _surfaces(messages: list[dict[str, str]], max_tokens: int) -> list[tuple[str, dict[str, Any]]]:
    """The same chat on the native, OpenAI- and Anthropic-compatible routes, to a model whose
    own output limit is the operator's cap (shared/model_limits.py)."""
    return [
        (
            "/api/v1/chat",
            chat_body(
                "deepseek", "deepseek-reasoner", "", messages=messages, max_tokens=max_tokens
            ),
        ),
        (
            "/v1/chat/completions",
            {"model": "deepseek/deepseek-reasoner", "messages": messages, "max_tokens": max_tokens},
        ),
        (
            "/v1/chat/completions",
            {
                "model": "deepseek/deepseek-reasoner",
                "messages": messages,
                "max_completion_tokens": max_tokens,
            },
        ),
        (
            "/v1/messages",
            {"model": "deepseek/deepseek-reasoner", "messages": messages, "max_tokens": max_tokens},
        ),
    ]


def _refused_field(response: httpx.Response) -> str:
    """The field a 400 names, in the standard envelope or Anthropic's (with our trace id)."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["trace_id"] == response.headers["x-request-id"]
    assert error["type"] in ("validation_error", "invalid_request_error")
    field: str = error["details"]["field"]
    assert f"'{field}'" in error["message"]
    return field


async def test_messages_prompt_size_and_max_tokens_are_capped_on_every_chat_surface(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    hello = [{"role": "user", "content": "hi"}]
    too_many = [{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1)
    too_long = [{"role": "user", "content": "w" * (MAX_PROMPT_CHARS + 1)}]
    cases = [
        (_surfaces(too_many, 5), "messages"),
        (_surfaces(too_long, 5), "messages"),
        (_surfaces(hello, MAX_OUTPUT_TOKENS + 1), "max_tokens"),
    ]
    for surfaces, field in cases:
        for path, body in surfaces:
            for stream in (False, True):
                response = await edge.post(
                    path, json={**body, "stream": stream}, headers=auth(user_token)
                )
                assert _refused_field(response) == field, (path, response.text)
    at_the_caps = [{"role": "user", "content": "hi [[sim tokens=1]]"}] * MAX_MESSAGES
    for path, body in _surfaces(at_the_caps, MAX_OUTPUT_TOKENS):
        response = await edge.post(path, json=body, headers=auth(user_token))
        assert response.status_code == 200, (path, response.text)


async def test_embeddings_and_rerank_inputs_are_capped(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    long_text = "v" * (MAX_PROMPT_CHARS // 2 + 1)
    for path, body, field in (
        ("/api/v1/embeddings", {"input": ["e"] * (MAX_INPUTS + 1)}, "input"),
        ("/api/v1/embeddings", {"input": [long_text, long_text]}, "input"),
        ("/api/v1/rerank", {"query": "q", "documents": ["d"] * (MAX_INPUTS + 1)}, "documents"),
        ("/api/v1/rerank", {"query": "q", "documents": [long_text, long_text]}, "documents"),
    ):
        provider = {"provider": "nvidia_nim", "model": "nvidia/nv-embedqa-e5-v5"}
        response = await edge.post(path, json=provider | body, headers=auth(user_token))
        assert _refused_field(response) == field, (path, response.text)
    openai = {"model": "nvidia_nim/nvidia/nv-embedqa-e5-v5", "input": ["e"] * (MAX_INPUTS + 1)}
    response = await edge.post("/v1/embeddings", json=openai, headers=auth(user_token))
    assert _refused_field(response) == "input"
