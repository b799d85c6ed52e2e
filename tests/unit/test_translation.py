"""Pure translation logic of the worker: wire shapes in and out, no HTTP."""

import httpx
import orjson
import pytest

from services.workers.providers.anthropic import StreamState as AnthropicStream
from services.workers.providers.anthropic_tools import (
    convert_messages,
    convert_tools,
    tool_calls_from,
)
from services.workers.providers.openai_profiles import PROFILES
from services.workers.providers.openai_wire import (
    StreamState,
    build_body,
    merge_same_role,
    usage_from,
)
from services.workers.providers.retrieval import nim_rerank_path
from services.workers.providers.retrieval_shapes import pooled_vectors, ranked_results, sigmoid
from services.workers.providers.upstream_errors import upstream_error
from services.workers.publisher import merge_tool_calls
from shared.errors import InvalidRequest, ProviderError, RateLimitError
from shared.messages import ToolCallDelta
from shared.providers import PROVIDERS
from shared.schemas import ChatMessage, ChatRequest, RerankRequest


def chat(**fields: object) -> ChatRequest:
    base: dict[str, object] = {
        "provider": "deepseek",
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
    }
    return ChatRequest.model_validate(base | fields)


def test_publisher_merges_argument_pieces_of_one_call_and_keeps_order() -> None:
    pieces: list[ToolCallDelta] = []
    merge_tool_calls(pieces, (ToolCallDelta(index=0, id="a", name="f"),))
    merge_tool_calls(pieces, (ToolCallDelta(index=0, arguments='{"x"'),))
    merge_tool_calls(pieces, (ToolCallDelta(index=0, arguments=":1}"),))
    merge_tool_calls(pieces, (ToolCallDelta(index=1, id="b", name="g", arguments=""),))
    merge_tool_calls(pieces, (ToolCallDelta(index=1, arguments="{}"),))
    assert pieces == [
        ToolCallDelta(index=0, id="a", name="f", arguments='{"x":1}'),
        ToolCallDelta(index=1, id="b", name="g", arguments="{}"),
    ]


def test_xai_usage_adds_reasoning_to_completion() -> None:
    raw = {
        "prompt_tokens": 213,
        "completion_tokens": 23,
        "total_tokens": 411,
        "completion_tokens_details": {"reasoning_tokens": 175},
    }
    usage = usage_from(raw, PROFILES["xai"])
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (213, 198, 411)
    deepseek = usage_from(raw | {"prompt_cache_hit_tokens": 7}, PROFILES["deepseek"])
    assert deepseek.completion_tokens == 23
    assert deepseek.prompt_tokens_details == {"cached_tokens": 7}


def test_provider_fields_in_each_providers_form() -> None:
    headers: dict[str, str] = {}
    body = build_body(
        chat(site_url="https://x", app_name="App", transforms=["middle-out"]),
        PROFILES["openrouter"],
        headers,
    )
    assert headers == {"HTTP-Referer": "https://x", "X-Title": "App"}
    assert body["transforms"] == ["middle-out"]
    body = build_body(chat(fallback_models=["b"], cache=False), PROFILES["litellm"], {})
    assert (body["fallbacks"], body["cache"]) == (["b"], {"no-cache": True})
    headers = {}
    build_body(chat(use_cache=False), PROFILES["huggingface"], headers)
    assert headers == {"x-use-cache": "false"}
    body = build_body(chat(stream=True, reasoning_effort="low"), PROFILES["perplexity"], {})
    assert "stream_options" not in body
    assert body["reasoning_effort"] == "low"


def test_same_role_messages_are_merged_for_alternation() -> None:
    merged = merge_same_role(
        [
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "c"},
        ]
    )
    assert merged == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "c"},
    ]


def test_cumulative_chunks_without_delta_are_diffed() -> None:
    state = StreamState(PROFILES["perplexity"])
    first = state.feed({"choices": [{"message": {"content": "Hel"}}]})
    second = state.feed({"choices": [{"message": {"content": "Hello"}, "finish_reason": "stop"}]})
    assert first is not None and second is not None
    assert (first.content, second.content, state.finish) == ("Hel", "lo", "stop")


def test_openai_stream_tool_call_deltas_and_empty_xai_deltas() -> None:
    state = StreamState(PROFILES["xai"])
    assert state.feed({"choices": [{"index": 0, "delta": {}}]}) is None
    head = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
    event = state.feed({"choices": [{"delta": {"tool_calls": [head]}}]})
    assert event is not None
    assert event.tool_calls == (ToolCallDelta(index=0, id="c1", name="f"),)


def test_openrouter_reasoning_field_is_reasoning_content() -> None:
    state = StreamState(PROFILES["openrouter"])
    event = state.feed({"provider": "P", "choices": [{"delta": {"reasoning": "hmm"}}]})
    assert event is not None and event.reasoning_content == "hmm"
    assert state.metadata == {"provider": "P"}


def test_anthropic_messages_tools_and_results() -> None:
    messages = [
        ChatMessage(role="system", content="S1"),
        ChatMessage(role="system", content="S2"),
        ChatMessage(role="user", content="hi"),
        ChatMessage.model_validate(
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {"id": "t1", "function": {"name": "f", "arguments": '{"a":1}'}},
                    {"id": "t2", "function": {"name": "g", "arguments": ""}},
                ],
            }
        ),
        ChatMessage(role="tool", tool_call_id="t1", content="one"),
        ChatMessage(role="tool", tool_call_id="t2", content="two"),
    ]
    system, turns = convert_messages(messages)
    assert system == "S1\n\nS2"
    assert turns[1]["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "t2", "name": "g", "input": {}},
    ]
    assert turns[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "one"},
            {"type": "tool_result", "tool_use_id": "t2", "content": "two"},
        ],
    }
    assert len(turns) == 3


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", False, {"type": "none"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
    ],
)
def test_anthropic_tool_choice(choice: object, parallel: bool | None, expected: object) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    fields = convert_tools(
        chat(provider="anthropic", tools=tools, tool_choice=choice, parallel_tool_calls=parallel)
    )
    assert fields["tools"] == [{"name": "f", "description": "", "input_schema": {"type": "object"}}]
    assert fields["tool_choice"] == expected


def test_anthropic_tool_use_back_to_tool_calls_and_stream_indices() -> None:
    [call] = (
        tool_calls_from(
            [
                {"type": "text", "text": "x"},
                {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            ]
        )
        or []
    )
    assert (call.id, call.function.name, call.function.arguments) == ("t", "f", "{}")
    state = AnthropicStream("m")
    text_block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}
    assert state.feed(text_block) is None
    start = state.feed(
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
        }
    )
    piece = state.feed(
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"a"'},
        }
    )
    assert start is not None and piece is not None
    assert start.tool_calls == (ToolCallDelta(index=0, id="t", name="f"),)
    assert piece.tool_calls == (ToolCallDelta(index=0, arguments='{"a"'),)


def test_feature_extraction_shapes_become_one_vector_per_input() -> None:
    assert pooled_vectors([1.0, 2.0], 1) == [[1.0, 2.0]]
    assert pooled_vectors([[1.0, 2.0], [3.0, 4.0]], 2) == [[1.0, 2.0], [3.0, 4.0]]
    assert pooled_vectors([[1.0, 2.0], [3.0, 4.0]], 1) == [[2.0, 3.0]]
    assert pooled_vectors([[[1.0, 1.0], [3.0, 3.0]], [[5.0, 5.0]]], 2) == [[2.0, 2.0], [5.0, 5.0]]
    assert pooled_vectors({"error": "x"}, 1) is None


def test_rerank_results_sorted_top_n_and_index_checked() -> None:
    request = RerankRequest(
        provider="litellm", model="m", query="q", documents=["a", "b", "c"], top_n=2
    )
    results = ranked_results([(0, 0.1), (2, 0.9), (1, 0.5)], request) or []
    assert [(r.index, r.document) for r in results] == [(2, "c"), (1, "b")]
    assert ranked_results([(3, 0.1)], request) is None
    assert sigmoid(-800) < sigmoid(-2) < sigmoid(0) == 0.5 < sigmoid(3) < sigmoid(800) <= 1
    assert nim_rerank_path("nvidia/llama-3.2-nv-rerankqa-1b-v2") == (
        "nvidia/llama-3_2-nv-rerankqa-1b-v2"
    )


@pytest.mark.parametrize(
    ("provider", "status", "body", "kind", "mapped", "text"),
    [
        (
            "xai",
            400,
            {"code": "Client specified an invalid argument", "error": "Incorrect API key provided"},
            ProviderError,
            502,
            "Incorrect API key",
        ),
        ("xai", 400, {"code": "x", "error": "bad field"}, InvalidRequest, 400, "bad field"),
        ("perplexity", 401, "<html><title>401 Authorization Required</title></html>",
         ProviderError, 502, "401 Authorization Required"),
        ("nvidia_nim", 401, {"status": 401, "title": "Unauthorized", "detail": "Bad key"},
         ProviderError, 502, "Bad key"),
        ("huggingface", 503, {"error": "Model is loading", "error_type": "Unhealthy"},
         ProviderError, 503, "Model is loading"),
        ("anthropic", 529, {"type": "error", "error": {"type": "overloaded_error",
         "message": "Overloaded"}}, ProviderError, 503, "Overloaded"),
        ("deepseek", 429, {"error": {"message": "slow down"}}, RateLimitError, 429, "slow down"),
        ("openrouter", 403, {"error": {"code": 403, "message": "Input flagged",
         "metadata": {"reasons": ["violence"]}}}, InvalidRequest, 403, "Input flagged"),
        ("openrouter", 403, {"error": {"code": 403, "message": "Key disabled"}},
         ProviderError, 502, "rejected the credentials: Key disabled"),
    ],
)  # fmt: skip
def test_upstream_errors_in_every_providers_shape(
    provider: str, status: int, body: object, kind: type, mapped: int, text: str
) -> None:
    raw = body if isinstance(body, str) else orjson.dumps(body).decode()
    error = upstream_error(PROVIDERS[provider], status, raw, httpx.Headers({"retry-after": "2"}))
    assert isinstance(error, kind)
    assert error.status == mapped
    assert text in error.message
    assert PROVIDERS[provider].name in error.message
    assert error.details["provider"] == provider
    if kind is RateLimitError:
        assert error.retry_after == 2
