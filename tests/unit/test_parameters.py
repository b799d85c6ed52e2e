"""The parameter policy: refused by name, or dropped and named when asked (`shared.parameters`)."""

import pytest

from shared.errors import InvalidRequest
from shared.parameters import enforce
from shared.schemas import ChatRequest


def chat(provider: str, model: str, **fields: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {"provider": provider, "model": model, "messages": [{"role": "user", "content": "hi"}]}
        | fields
    )


def test_a_refused_parameter_is_a_400_naming_it() -> None:
    request = chat("deepseek", "deepseek-chat", seed=7, user="u")
    with pytest.raises(InvalidRequest) as refused:
        enforce(request, [("deepseek", "deepseek-chat")], drop=False)
    assert refused.value.details == {
        "provider": "deepseek",
        "model": "deepseek-chat",
        "parameter": "seed",
    }


def test_a_value_the_target_does_not_take_names_the_allowed_ones() -> None:
    request = chat("deepseek", "deepseek-chat", response_format={"type": "json_schema"})
    with pytest.raises(InvalidRequest) as refused:
        enforce(request, [("deepseek", "deepseek-chat")], drop=False)
    assert refused.value.details["allowed"] == ["text", "json_object"]


def test_dropping_takes_off_what_any_target_refuses_and_names_it_in_table_order() -> None:
    request = chat("xai", "grok-3", user="u", seed=7, top_k=5, drop_params=True)
    targets = [("xai", "grok-3"), ("deepseek", "deepseek-chat")]
    kept, dropped = enforce(request, targets, drop=True)
    assert dropped == ["top_k", "seed", "user"]  # seed and user: the DeepSeek fallback's
    assert (kept.top_k, kept.seed, kept.user, kept.drop_params) == (None, None, None, None)


def test_a_budget_alone_can_be_dropped() -> None:
    request = chat("deepseek", "deepseek-chat", thinking={"type": "enabled", "budget_tokens": 2048})
    kept, dropped = enforce(request, [("deepseek", "deepseek-chat")], drop=True)
    assert dropped == ["thinking.budget_tokens"]
    assert kept.thinking is not None and kept.thinking.model_dump() == {
        "type": "enabled",
        "budget_tokens": None,
    }


def test_values_at_their_defaults_pass_everywhere() -> None:
    request = chat("anthropic", "claude-sonnet-4-20250514", n=1, logprobs=False, store=False)
    assert enforce(request, [("anthropic", "claude-sonnet-4-20250514")], drop=False)[1] == []


def test_model_families_have_their_own_rules() -> None:
    request = chat("deepseek", "deepseek-reasoner", logprobs=True)
    with pytest.raises(InvalidRequest):
        enforce(request, [("deepseek", "deepseek-reasoner")], drop=False)
    assert enforce(request, [("deepseek", "deepseek-chat")], drop=False)[1] == []
