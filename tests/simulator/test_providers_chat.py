"""The new OpenAI-dialect providers, driven by the official openai SDK."""

import openai
import pytest

PROVIDERS = [
    ("xai", "", "grok-3"),
    ("openrouter", "", "openai/gpt-4o-mini"),
    ("litellm", "", "gpt-4o"),
    ("nvidia_nim", "/v1", "meta/llama-3.3-70b-instruct"),
    ("perplexity", "", "sonar"),
    ("huggingface", "/v1", "meta-llama/Llama-3.1-8B-Instruct"),
]
IDS = [p[0] for p in PROVIDERS]
AUTH_ERRORS: dict[str, type[openai.APIStatusError]] = {"xai": openai.BadRequestError}


def _client(sim_url: str, provider: str, suffix: str, key: str = "sk-test") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{sim_url}/{provider}{suffix}", api_key=key, max_retries=0)


def _messages(text: str = "Say hello to the simulator please") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(("provider", "suffix", "model"), PROVIDERS, ids=IDS)
def test_chat_and_stream_agree(sim_url: str, provider: str, suffix: str, model: str) -> None:
    client = _client(sim_url, provider, suffix)
    completion = client.chat.completions.create(model=model, messages=_messages())
    chunks = list(client.chat.completions.create(model=model, messages=_messages(), stream=True))

    text = completion.choices[0].message.content
    assert text is not None
    assert len(text.split()) == 12
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 6
    assert completion.usage.completion_tokens == 12
    assert completion.usage.total_tokens == 18
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


@pytest.mark.parametrize(("provider", "suffix", "model"), PROVIDERS, ids=IDS)
@pytest.mark.parametrize(
    ("fail", "error"),
    [
        ("401", openai.AuthenticationError),
        ("429", openai.RateLimitError),
        ("500", openai.InternalServerError),
        ("503", openai.InternalServerError),
    ],
)
def test_failures_raise_sdk_errors(
    sim_url: str,
    provider: str,
    suffix: str,
    model: str,
    fail: str,
    error: type[openai.APIStatusError],
) -> None:
    if fail == "401":
        error = AUTH_ERRORS.get(provider, error)
    client = _client(sim_url, provider, suffix)
    with pytest.raises(error) as caught:
        client.chat.completions.create(model=model, messages=_messages(f"hi [[sim fail={fail}]]"))
    if fail == "429":
        assert caught.value.response.headers["retry-after"] == "1"


@pytest.mark.parametrize(("provider", "suffix", "model"), PROVIDERS, ids=IDS)
def test_failing_key_and_missing_key(sim_url: str, provider: str, suffix: str, model: str) -> None:
    client = _client(sim_url, provider, suffix, key="sk-fail-401-x")
    with pytest.raises(AUTH_ERRORS.get(provider, openai.AuthenticationError)):
        client.chat.completions.create(model=model, messages=_messages())
    client = _client(sim_url, provider, suffix, key="sk-fail-429")
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=model, messages=_messages())


@pytest.mark.parametrize(("provider", "suffix", "model"), PROVIDERS, ids=IDS)
def test_midstream_error_raises(sim_url: str, provider: str, suffix: str, model: str) -> None:
    client = _client(sim_url, provider, suffix)
    stream = client.chat.completions.create(
        model=model, messages=_messages("hi [[sim fail=midstream]]"), stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert len([r for r in received if r]) == 3


@pytest.mark.parametrize(("provider", "suffix", "model"), PROVIDERS, ids=IDS)
def test_models_list_holds_the_model(sim_url: str, provider: str, suffix: str, model: str) -> None:
    client = _client(sim_url, provider, suffix)
    ids = [m.id for m in client.models.list()]
    assert model in ids


def test_include_usage_chunk(sim_url: str) -> None:
    client = _client(sim_url, "openrouter", "")
    chunks = list(
        client.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=_messages(),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 18


def test_reasoning_models_stream_reasoning_first(sim_url: str) -> None:
    cases = [
        ("xai", "", "grok-3-mini", "reasoning_content"),
        ("openrouter", "", "deepseek/deepseek-r1", "reasoning"),
        ("huggingface", "/v1", "together/deepseek-ai/DeepSeek-R1", "reasoning_content"),
    ]
    messages = _messages("think [[sim tokens=3 reasoning_tokens=4]]")
    for provider, suffix, model, field in cases:
        client = _client(sim_url, provider, suffix)
        message = client.chat.completions.create(model=model, messages=messages).choices[0].message
        deltas = [
            c.choices[0].delta
            for c in client.chat.completions.create(model=model, messages=messages, stream=True)
            if c.choices
        ]
        reasoning = (message.model_extra or {})[field]
        assert len(reasoning.split()) == 4, provider
        streamed = "".join((d.model_extra or {}).get(field) or "" for d in deltas)
        assert streamed == reasoning, provider
        assert "".join(d.content or "" for d in deltas) == message.content, provider
