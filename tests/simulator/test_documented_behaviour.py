"""What the providers' documentation says they do, as the simulator does it (docs/providers.md):
the official SDKs as clients where they apply, httpx on the raw bytes elsewhere."""

from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

AUTH = {"authorization": "Bearer sk-test"}
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def _client(sim_url: str, provider: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{sim_url}/{provider}", api_key="sk-test", max_retries=0)


def _data(raw: str) -> list[Any]:
    frames = [f for f in raw.split("\n\n") if f.startswith("data: {")]
    return [orjson.loads(f.removeprefix("data: ")) for f in frames]


def test_deepseek_thinking_turns_with_tool_calls_must_come_back_with_their_reasoning(
    sim_url: str,
) -> None:
    client = _client(sim_url, "deepseek")
    ask = {"role": "user", "content": "weather? [[sim tool=get_weather]]"}
    first = client.chat.completions.create(model="deepseek-reasoner", messages=[ask], tools=TOOLS)
    message = first.choices[0].message
    assert message.tool_calls and message.model_extra
    reasoning = message.model_extra["reasoning_content"]
    assert reasoning
    call = message.tool_calls[0]
    turn: dict[str, Any] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [call.model_dump(exclude_none=True)],
    }
    result = {"role": "tool", "tool_call_id": call.id, "content": "sunny"}

    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="deepseek-reasoner", messages=[ask, turn, result], tools=TOOLS
        )
    answer = client.chat.completions.create(
        model="deepseek-reasoner",
        messages=[ask, {**turn, "reasoning_content": reasoning}, result],
        tools=TOOLS,
    )

    assert "reasoning_content" in refused.value.message
    assert answer.choices[0].finish_reason == "stop"


def test_deepseek_thinking_switch(sim_url: str) -> None:
    client = _client(sim_url, "deepseek")
    ask = [{"role": "user", "content": "hi"}]
    off = client.chat.completions.create(
        model="deepseek-reasoner", messages=ask, extra_body={"thinking": {"type": "disabled"}}
    )
    on = client.chat.completions.create(
        model="deepseek-chat", messages=ask, extra_body={"thinking": {"type": "enabled"}}
    )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="deepseek-chat", messages=ask, extra_body={"thinking": {"type": "maybe"}}
        )

    assert "reasoning_content" not in (off.choices[0].message.model_extra or {})
    assert on.choices[0].message.model_extra
    assert on.choices[0].message.model_extra["reasoning_content"]


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("grok-3-mini", {"presence_penalty": 0.5}),
        ("grok-3-mini", {"frequency_penalty": 0.5}),
        ("grok-3-mini", {"stop": ["END"]}),
        ("grok-3-mini", {"reasoning_effort": "medium"}),
        ("grok-4-1-fast-reasoning", {"reasoning_effort": "high"}),
        ("grok-3", {"reasoning_effort": "low"}),
    ],
)
def test_xai_reasoning_models_refuse_what_xai_says(
    sim_url: str, model: str, extra: dict[str, Any]
) -> None:
    response = httpx.post(
        f"{sim_url}/xai/v1/chat/completions",
        headers=AUTH,
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
    )
    assert response.status_code == 400
    assert set(response.json()) == {"code", "error"}


def test_xai_reasoning_that_is_only_counted(sim_url: str) -> None:
    client = _client(sim_url, "xai")
    ask = [{"role": "user", "content": "hi"}]
    mini = client.chat.completions.create(
        model="grok-3-mini", messages=ask, reasoning_effort="high"
    )
    fast = client.chat.completions.create(model="grok-4-1-fast-reasoning", messages=ask)

    assert mini.choices[0].message.model_extra
    assert mini.choices[0].message.model_extra["reasoning_content"]
    assert "reasoning_content" not in (fast.choices[0].message.model_extra or {})
    assert fast.usage and fast.usage.completion_tokens_details
    assert fast.usage.completion_tokens_details.reasoning_tokens


def test_openrouter_reasoning_object(sim_url: str) -> None:
    client = _client(sim_url, "openrouter")
    ask = [{"role": "user", "content": "hi"}]
    model = "deepseek/deepseek-r1"
    shown = client.chat.completions.create(
        model=model, messages=ask, extra_body={"reasoning": {"effort": "xhigh"}}
    )
    hidden = client.chat.completions.create(
        model=model, messages=ask, extra_body={"reasoning": {"enabled": False}}
    )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=model, messages=ask, extra_body={"reasoning": {"effort": "max"}}
        )

    extra = shown.choices[0].message.model_extra or {}
    assert extra["reasoning_details"] == [
        {"type": "reasoning.text", "text": extra["reasoning"], "format": "unknown", "index": 0}
    ]
    assert not (hidden.choices[0].message.model_extra or {}).get("reasoning")


def test_openrouter_errors_after_the_model_began_keep_status_200(sim_url: str) -> None:
    client = _client(sim_url, "openrouter")
    url = f"{sim_url}/openrouter/chat/completions"
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    partial = client.chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "hi [[sim fail=midstream]]"}],
    )
    bare = httpx.post(
        url,
        headers=AUTH,
        json={**body, "messages": [{"role": "user", "content": "hi [[sim fail=error_body]]"}]},
    )

    answer = orjson.loads(partial.http_response.content)
    assert partial.http_response.status_code == 200
    assert answer["choices"][0]["finish_reason"] == "error"
    assert answer["choices"][0]["message"]["content"]
    assert answer["error"]["code"] == 502
    assert bare.status_code == 200
    assert set(bare.json()) == {"error"}
    assert bare.json()["error"]["message"]


def test_text_generation_inference_streams_its_error_as_a_string(sim_url: str) -> None:
    response = httpx.post(
        f"{sim_url}/huggingface/v1/chat/completions",
        headers=AUTH,
        json={
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "messages": [{"role": "user", "content": "hi [[sim fail=midstream]]"}],
            "stream": True,
        },
    )
    last = _data(response.text)[-1]
    assert isinstance(last["error"], str)
    assert last["error_type"] == "generation"


def test_nim_self_hosted_ranking_and_hosted_polling(sim_url: str) -> None:
    body = {
        "model": "nvidia/llama-3.2-nv-rerankqa-1b-v2",
        "query": {"text": "gpu memory"},
        "passages": [{"text": "cpu cache"}, {"text": "gpu memory bandwidth"}],
    }
    hosted = f"{sim_url}/nvidia_nim/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking"
    ranked = httpx.post(f"{sim_url}/nvidia_nim/v1/ranking", headers=AUTH, json=body)
    pending_body = {**body, "query": {"text": "gpu memory [[sim pending=2]]"}}
    accepted = httpx.post(hosted, headers=AUTH, json=pending_body)
    request_id = accepted.headers["NVCF-REQID"]
    status = f"{sim_url}/nvidia_nim/v2/nvcf/pexec/status/{request_id}"
    first, second, gone = (httpx.get(status, headers=AUTH) for _ in range(3))

    assert ranked.status_code == 200
    assert ranked.json()["rankings"][0]["index"] == 1
    assert accepted.status_code == 202
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["rankings"][0]["index"] == 1
    assert gone.status_code == 404


def test_perplexity_reasoning_in_think_tags_and_research_usage(sim_url: str) -> None:
    client = _client(sim_url, "perplexity")
    ask = [{"role": "user", "content": "hi"}]
    pro = client.chat.completions.create(model="sonar-reasoning-pro", messages=ask)
    research = client.chat.completions.create(model="sonar-deep-research", messages=ask)
    models = [
        m["id"] for m in httpx.get(f"{sim_url}/perplexity/models", headers=AUTH).json()["data"]
    ]

    content = pro.choices[0].message.content or ""
    assert content.startswith("<think>")
    assert "</think>" in content
    usage = (research.usage.model_extra if research.usage else None) or {}
    assert research.usage and usage["citation_tokens"] > 0 and usage["reasoning_tokens"] > 0
    assert research.usage.total_tokens == (
        research.usage.prompt_tokens + research.usage.completion_tokens
    )
    assert "sonar-reasoning" not in models


def test_anthropic_stop_sequences_and_calls_without_arguments(sim_url: str) -> None:
    client = anthropic.Anthropic(base_url=f"{sim_url}/anthropic", api_key="sk-ant", max_retries=0)
    model, user = "claude-sonnet-4-20250514", {"role": "user", "content": "tell me"}
    plain = client.messages.create(model=model, max_tokens=100, messages=[user])
    text = plain.content[0].text if plain.content[0].type == "text" else ""
    stop = text.split()[3]
    cut = client.messages.create(
        model=model, max_tokens=100, messages=[user], stop_sequences=[stop]
    )
    tools: Any = [{"name": "now", "input_schema": {"type": "object", "properties": {}}}]
    ask = {"role": "user", "content": "time? [[sim tool=now]]"}
    with client.messages.stream(model=model, max_tokens=100, messages=[ask], tools=tools) as s:
        final = s.get_final_message()

    assert cut.stop_reason == "stop_sequence"
    assert cut.stop_sequence == stop
    assert cut.content[0].type == "text"
    assert text.startswith(cut.content[0].text)
    assert stop not in cut.content[0].text
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {}
