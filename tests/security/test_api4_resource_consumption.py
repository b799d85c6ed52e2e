"""OWASP API4:2023 Unrestricted Resource Consumption.

What is capped today: the request body (`MAX_BODY_BYTES`, announced or streamed), the number of
tools, fallbacks, embeddings inputs and rerank documents, JSON depth and integer size, and
`max_tokens` through the token budget (`tokens_per_minute` of a user or gateway API key): the
budget is reserved before the job is queued, so an absurd `max_tokens` is refused at once.
There is no fixed upper bound on `max_tokens` or on the message count by themselves.
"""

from collections.abc import AsyncIterator

import httpx

from shared.schemas import MAX_TOOLS
from tests.e2e.helpers import assert_envelope, auth, chat_body
from tests.security.support import register

MAX_BODY_BYTES = 1_048_576  # the fleet's default
DEEPSEEK = ("deepseek", "deepseek-chat")


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
    absurd = chat_body(*DEEPSEEK, "hi [[sim tokens=1]]", max_tokens=10**9)
    response = await edge.post("/api/v1/chat", json=absurd, headers=auth(key))
    assert_envelope(response, 429, "rate_limit_error")
    assert "retry-after" in response.headers
    fits = chat_body(*DEEPSEEK, "hi [[sim tokens=1]]", max_tokens=100)
    assert (await edge.post("/api/v1/chat", json=fits, headers=auth(key))).status_code == 200
