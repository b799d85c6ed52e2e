"""`max_tokens` is held to what the model can give (`shared.model_limits`) on every chat
surface, through the running edge: over it is a 400 naming the field, the model and the limit;
exactly at it is served. A model with no published figure is held to `MAX_OUTPUT_TOKENS`."""

from typing import Any

import httpx

from shared.model_limits import MAX_OUTPUT_TOKENS_BY_MODEL
from shared.settings import Settings
from tests.e2e.helpers import auth, chat_body

DEEPSEEK_CHAT = MAX_OUTPUT_TOKENS_BY_MODEL["deepseek", "deepseek-chat"]
HAIKU = "claude-3-5-haiku-20241022"
HAIKU_LIMIT = MAX_OUTPUT_TOKENS_BY_MODEL["anthropic", HAIKU]
MAX_OUTPUT_TOKENS = Settings.model_fields["max_output_tokens"].default
SHORT = "hi [[sim tokens=1]]"


def refusal(response: httpx.Response) -> dict[str, Any]:
    """The details of a 400 about `max_tokens`, in the standard envelope or Anthropic's."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] in ("validation_error", "invalid_request_error")
    assert error["trace_id"] == response.headers["x-request-id"]
    assert "'max_tokens'" in error["message"]
    details: dict[str, Any] = error["details"]
    assert details["field"] == "max_tokens"
    assert f"{details['provider']}/{details['model']}" in error["message"]
    assert str(details["limit"]) in error["message"]
    return details


async def test_native_chat_is_held_to_the_models_limit(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    for stream in (False, True):
        over = chat_body("deepseek", "deepseek-chat", SHORT, max_tokens=DEEPSEEK_CHAT + 1)
        response = await edge.post(
            "/api/v1/chat", json=over | {"stream": stream}, headers=auth(user_token)
        )
        details = refusal(response)
        assert (details["model"], details["limit"]) == ("deepseek-chat", DEEPSEEK_CHAT)
        assert details["value"] == DEEPSEEK_CHAT + 1
    at = chat_body("deepseek", "deepseek-chat", SHORT, max_tokens=DEEPSEEK_CHAT)
    response = await edge.post("/api/v1/chat", json=at, headers=auth(user_token))
    assert response.status_code == 200, response.text
    # A model that may give more still takes what deepseek-chat may not.
    reasoner = chat_body("deepseek", "deepseek-reasoner", SHORT, max_tokens=DEEPSEEK_CHAT + 1)
    response = await edge.post("/api/v1/chat", json=reasoner, headers=auth(user_token))
    assert response.status_code == 200, response.text


async def test_openai_compatible_route_is_held_to_the_models_limit(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    hello = [{"role": "user", "content": SHORT}]
    for field in ("max_tokens", "max_completion_tokens"):
        body = {"model": "deepseek/deepseek-chat", "messages": hello}
        over = await edge.post(
            "/v1/chat/completions", json=body | {field: DEEPSEEK_CHAT + 1}, headers=auth(user_token)
        )
        details = refusal(over)
        assert (details["provider"], details["limit"]) == ("deepseek", DEEPSEEK_CHAT)
        at = await edge.post(
            "/v1/chat/completions", json=body | {field: DEEPSEEK_CHAT}, headers=auth(user_token)
        )
        assert at.status_code == 200, at.text


async def test_anthropic_compatible_route_is_held_to_the_models_limit(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    body = {"model": HAIKU, "messages": [{"role": "user", "content": SHORT}]}
    over = await edge.post(
        "/v1/messages", json=body | {"max_tokens": HAIKU_LIMIT + 1}, headers=auth(user_token)
    )
    details = refusal(over)
    assert (details["provider"], details["model"]) == ("anthropic", HAIKU)
    at = await edge.post(
        "/v1/messages", json=body | {"max_tokens": HAIKU_LIMIT}, headers=auth(user_token)
    )
    assert at.status_code == 200, at.text


async def test_a_fallback_model_holds_max_tokens_to_its_own_limit(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    body = chat_body(
        "deepseek",
        "deepseek-reasoner",
        SHORT,
        max_tokens=DEEPSEEK_CHAT + 1,
        fallbacks=["deepseek/deepseek-chat"],
    )
    details = refusal(await edge.post("/api/v1/chat", json=body, headers=auth(user_token)))
    assert (details["model"], details["limit"]) == ("deepseek-chat", DEEPSEEK_CHAT)


async def test_a_model_without_a_published_limit_is_held_to_max_output_tokens(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    assert ("xai", "grok-3") not in MAX_OUTPUT_TOKENS_BY_MODEL
    over = chat_body("xai", "grok-3", SHORT, max_tokens=MAX_OUTPUT_TOKENS + 1)
    details = refusal(await edge.post("/api/v1/chat", json=over, headers=auth(user_token)))
    assert (details["model"], details["limit"]) == ("grok-3", MAX_OUTPUT_TOKENS)
    at = chat_body("xai", "grok-3", SHORT, max_tokens=MAX_OUTPUT_TOKENS)
    response = await edge.post("/api/v1/chat", json=at, headers=auth(user_token))
    assert response.status_code == 200, response.text
