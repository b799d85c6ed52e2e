"""All eight providers through the whole fleet: content, usage, own-form fields and errors.

Each request carries an `X-Request-ID` we choose, so the simulator's recorder shows what
reached the provider (`upstream_record`) next to what the client got.
"""

from typing import Any

import httpx
import pytest

from tests.e2e.helpers import (
    assert_envelope,
    auth,
    chat_body,
    expected_usage,
    last_with,
    new_trace,
    sse_payloads,
    upstream_answer,
    upstream_record,
)

# (provider, a chat model, a reasoning model or None)
PROVIDERS = [
    ("anthropic", "claude-sonnet-4-20250514", None),
    ("deepseek", "deepseek-chat", "deepseek-reasoner"),
    ("xai", "grok-3", "grok-3-mini"),
    ("openrouter", "openai/gpt-4o-mini", "deepseek/deepseek-r1"),
    ("litellm", "gpt-4o-mini", None),
    ("nvidia_nim", "meta/llama-3.3-70b-instruct", None),
    ("perplexity", "sonar", None),
    ("huggingface", "meta-llama/Llama-3.1-8B-Instruct", "deepseek-ai/DeepSeek-R1"),
]
NAMES = {
    "anthropic": "Anthropic",
    "deepseek": "DeepSeek",
    "xai": "xAI",
    "openrouter": "OpenRouter",
    "litellm": "LiteLLM",
    "nvidia_nim": "NVIDIA NIM",
    "perplexity": "Perplexity",
    "huggingface": "Hugging Face",
}
IDS = [p[0] for p in PROVIDERS]
# The model each provider is tested with: its reasoning model where it has one, so usage
# semantics (xAI keeps reasoning out of completion_tokens) are exercised.
MODELS = [(p, reasoning or chat) for p, chat, reasoning in PROVIDERS]


async def post(
    edge: httpx.AsyncClient, token: str, body: dict[str, Any], trace: str | None = None
) -> httpx.Response:
    return await edge.post("/api/v1/chat", json=body, headers=auth(token, trace))


@pytest.mark.parametrize(("provider", "model"), MODELS, ids=IDS)
async def test_chat_content_and_usage_are_the_providers(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, provider, model
) -> None:
    trace = new_trace()
    response = await post(edge, user_token, chat_body(provider, model, "Say hello"), trace)

    assert response.status_code == 200, response.text
    answer = response.json()
    record = await upstream_record(simulator, trace)
    message = answer["choices"][0]["message"]
    assert message["content"] == record["reply"]
    assert message.get("reasoning_content") == (record["reasoning"] or None)
    assert answer["choices"][0]["finish_reason"] == "stop"
    prompt, completion = expected_usage(provider, record["usage"])
    usage = answer["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt, completion)
    assert usage["total_tokens"] == prompt + completion
    if provider == "xai":
        assert usage["completion_tokens_details"]["reasoning_tokens"] > 0


@pytest.mark.parametrize(("provider", "model"), MODELS, ids=IDS)
async def test_streaming_chat_content_and_usage_are_the_providers(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, provider, model
) -> None:
    trace = new_trace()
    body = chat_body(provider, model, "Tell a story [[sim tokens=25]]", stream=True)
    response = await post(edge, user_token, body, trace)

    assert response.status_code == 200, response.text
    payloads = sse_payloads(response.text)
    record = await upstream_record(simulator, trace)
    assert payloads[-1] == "[DONE]"
    *deltas, final = payloads[:-1]
    assert "".join(d["delta"].get("content", "") for d in deltas) == record["reply"]
    reasoning = "".join(d["delta"].get("reasoning_content", "") for d in deltas)
    assert reasoning == record["reasoning"]
    assert final["finish_reason"] == "stop"
    prompt, completion = expected_usage(provider, record["usage"])
    assert (final["usage"]["prompt_tokens"], final["usage"]["completion_tokens"]) == (
        prompt,
        completion,
    )
    assert final["usage"]["total_tokens"] == prompt + completion
    if provider == "perplexity":  # no stream_options there; usage rides on every chunk
        assert "stream_options" not in record["body"]
    elif provider != "anthropic":
        assert record["body"]["stream_options"] == {"include_usage": True}


# The provider's own fields: what we send, and how it must look when it reaches the provider.
FIELDS: dict[str, tuple[dict[str, Any], dict[str, str], dict[str, Any]]] = {
    "anthropic": ({"anthropic_version": "2023-01-01"}, {"anthropic-version": "2023-01-01"}, {}),
    "deepseek": (
        {"reasoning_effort": "high", "top_p": 0.5, "frequency_penalty": 0.25},
        {},
        {"reasoning_effort": "high", "top_p": 0.5, "frequency_penalty": 0.25},
    ),
    # grok-3 is no reasoning model: it takes penalties and `stop`, not `reasoning_effort`.
    "xai": (
        {"presence_penalty": 0.5, "stop": "END"},
        {},
        {"presence_penalty": 0.5, "stop": ["END"]},
    ),
    "openrouter": (
        {
            "site_url": "https://app.example",
            "app_name": "Gateway Tests",
            "transforms": ["middle-out"],
        },
        {"http-referer": "https://app.example", "x-title": "Gateway Tests"},
        {"transforms": ["middle-out"]},
    ),
    "litellm": (
        {"fallback_models": ["gpt-4o", "claude-3-5-sonnet"], "cache": False},
        {},
        {"fallbacks": ["gpt-4o", "claude-3-5-sonnet"], "cache": {"no-cache": True}},
    ),
    "nvidia_nim": (
        {"top_p": 0.9, "presence_penalty": 0.5, "stop": "END"},
        {},
        {"top_p": 0.9, "presence_penalty": 0.5, "stop": ["END"]},
    ),
    # `reasoning_effort` is sonar-deep-research's alone (tests/e2e/test_fidelity_reasoning.py).
    "perplexity": ({"top_p": 0.8}, {}, {"top_p": 0.8}),
    "huggingface": ({"use_cache": False}, {"x-use-cache": "false"}, {}),
}
PATHS = {
    "anthropic": "/anthropic/v1/messages",
    "huggingface": "/huggingface/v1/chat/completions",
}


@pytest.mark.parametrize(("provider", "model"), [(p, m) for p, m, _ in PROVIDERS], ids=IDS)
async def test_provider_specific_fields_reach_the_provider_in_its_own_form(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, provider, model
) -> None:
    fields, headers, body_fields = FIELDS[provider]
    trace = new_trace()
    response = await post(edge, user_token, chat_body(provider, model, "hi", **fields), trace)

    assert response.status_code == 200, response.text
    record = await upstream_record(simulator, trace)
    assert record["path"] == PATHS.get(provider, f"/{provider}/chat/completions")
    for name, value in headers.items():
        assert record["headers"][name] == value
    for name, value in body_fields.items():
        assert record["body"][name] == value
    spec_only = {"anthropic_version", "site_url", "app_name", "fallback_models", "use_cache"}
    assert not spec_only & set(record["body"]), record["body"]
    credentials = record["headers"].get("authorization") or record["headers"]["x-api-key"]
    assert credentials.endswith("sk-simulator")


async def test_openrouter_reasoning_effort_and_litellm_cache_true(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    trace = new_trace()
    body = chat_body("openrouter", "openai/gpt-4o-mini", "hi", reasoning_effort="low")
    assert (await post(edge, user_token, body, trace)).status_code == 200
    assert (await upstream_record(simulator, trace))["body"]["reasoning"] == {"effort": "low"}

    trace = new_trace()
    body = chat_body("litellm", "gpt-4o-mini", "hi", cache=True)
    assert (await post(edge, user_token, body, trace)).status_code == 200
    assert (await upstream_record(simulator, trace))["body"]["cache"] == {"no-cache": False}


async def test_anthropic_gets_images_as_base64_blocks_and_system_on_top(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    trace = new_trace()
    image = "data:image/png;base64,iVBORw0KGgo="
    body = {
        "provider": "anthropic",
        "model": "claude-sonnet-4-20250514",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": image}},
                ],
            },
        ],
    }
    response = await post(edge, user_token, body, trace)

    assert response.status_code == 200, response.text
    sent = (await upstream_record(simulator, trace))["body"]
    assert sent["system"] == "Be brief."
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
            ],
        }
    ]


async def test_perplexity_gets_alternating_roles(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    trace = new_trace()
    body = {
        "provider": "perplexity",
        "model": "sonar",
        "messages": [
            {"role": "system", "content": "Be precise."},
            {"role": "user", "content": "First question."},
            {"role": "user", "content": "Second question."},
        ],
    }
    response = await post(edge, user_token, body, trace)

    assert response.status_code == 200, response.text
    sent = (await upstream_record(simulator, trace))["body"]["messages"]
    assert sent == [
        {"role": "system", "content": "Be precise."},
        {"role": "user", "content": "First question.\n\nSecond question."},
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_deepseek_reasoning_content_reaches_the_client(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, stream: bool
) -> None:
    trace = new_trace()
    body = chat_body("deepseek", "deepseek-reasoner", "Think [[sim reasoning_tokens=6]]")
    response = await post(edge, user_token, {**body, "stream": stream}, trace)

    assert response.status_code == 200, response.text
    record = await upstream_record(simulator, trace)
    assert len(record["reasoning"].split()) == 6
    if stream:
        deltas = sse_payloads(response.text)[:-2]
        reasoning = "".join(d["delta"].get("reasoning_content", "") for d in deltas)
        usage = sse_payloads(response.text)[-2]["usage"]
    else:
        reasoning = response.json()["choices"][0]["message"]["reasoning_content"]
        usage = response.json()["usage"]
    assert reasoning == record["reasoning"]
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 6}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_perplexity_citations_reach_the_client(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, stream: bool
) -> None:
    trace = new_trace()
    body = chat_body("perplexity", "sonar", "How many stars are in the galaxy?", stream=stream)
    response = await post(edge, user_token, body, trace)

    assert response.status_code == 200, response.text
    answer = await upstream_answer(simulator, trace)
    if stream:
        payloads = sse_payloads(response.text)
        metadata = payloads[-2]["provider_metadata"]
        assert all("provider_metadata" not in p for p in payloads[:-2])
        citations, results = last_with(answer, "citations"), last_with(answer, "search_results")
    else:
        metadata = response.json()["provider_metadata"]
        citations, results = answer["citations"], answer["search_results"]
    assert citations and metadata["citations"] == citations
    assert metadata["search_results"] == results


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_openrouter_extras_become_provider_metadata(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, stream: bool
) -> None:
    trace = new_trace()
    body = chat_body("openrouter", "openai/gpt-4o-mini", "hi", stream=stream)
    response = await post(edge, user_token, body, trace)

    assert response.status_code == 200, response.text
    record = await upstream_record(simulator, trace)
    answer = await upstream_answer(simulator, trace)
    final = sse_payloads(response.text)[-2] if stream else response.json()
    metadata = final["provider_metadata"]
    choices = [c for p in answer for c in p["choices"]] if stream else answer["choices"]
    assert metadata["provider"] == (last_with(answer, "provider") if stream else answer["provider"])
    assert metadata["native_finish_reason"] == [c["finish_reason"] for c in choices][-1]
    assert metadata["cost"] == record["usage"]["cost"]


FAILURES = [
    ("401", 502, "provider_error"),
    ("403", 502, "provider_error"),
    ("429", 429, "rate_limit_error"),
    ("500", 502, "provider_error"),
    ("503", 503, "provider_error"),
    ("529", 503, "provider_error"),
]


# OpenRouter's 403 is a moderation refusal, not a credentials failure: see the next test.
@pytest.mark.parametrize(
    ("provider", "fail", "status", "error_type"),
    [
        (provider, *failure)
        for failure in FAILURES
        for provider in IDS
        if (provider, failure[0]) != ("openrouter", "403")
    ],
)
async def test_provider_errors_are_mapped(
    edge: httpx.AsyncClient,
    user_token: str,
    provider: str,
    fail: str,
    status: int,
    error_type: str,
) -> None:
    model = {p: m for p, m, _ in PROVIDERS}[provider]
    body = chat_body(provider, model, f"hi [[sim fail={fail}]]")
    response = await post(edge, user_token, body)

    error = assert_envelope(response, status, error_type)
    assert error["details"]["provider"] == provider
    assert NAMES[provider] in error["message"]
    if fail in ("401", "403"):
        assert "credentials" in error["message"]
    if fail == "403":
        assert error["details"]["upstream_status"] == 403
    if fail == "429":
        assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_openrouter_moderation_is_the_callers_403(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, stream: bool
) -> None:
    trace = new_trace()
    body = chat_body("openrouter", "openai/gpt-4o-mini", "hi [[sim fail=403]]", stream=stream)
    response = await post(edge, user_token, body, trace)

    error = assert_envelope(response, 403, "validation_error")
    flagged = (await upstream_answer(simulator, trace))["error"]
    assert error["message"] == f"OpenRouter moderation flagged the input: {flagged['message']}"
    assert error["details"]["code"] == "content_filter"
    assert error["details"]["reasons"] == flagged["metadata"]["reasons"]
    assert "credentials" not in error["message"]


@pytest.mark.parametrize(("provider", "model"), [(p, m) for p, m, _ in PROVIDERS], ids=IDS)
async def test_mid_stream_errors_end_with_an_error_event_then_done(
    edge: httpx.AsyncClient, user_token: str, provider: str, model: str
) -> None:
    body = chat_body(provider, model, "hi [[sim fail=midstream tokens=20]]", stream=True)
    response = await post(edge, user_token, body)

    assert response.status_code == 200, response.text
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    error = payloads[-2]["error"]
    assert error["type"] == "provider_error"
    assert error["details"]["provider"] == provider
    assert any(p["delta"].get("content") for p in payloads[:-2])
