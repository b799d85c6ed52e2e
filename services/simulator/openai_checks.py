"""What an OpenAI-dialect provider refuses in a chat request, and whether the request reasons.

Each rule is one the provider documents (docs/providers.md): the `response_format` types it
takes (DeepSeek: text and json_object; Perplexity: text, json_schema and regex); DeepSeek's
thinking switch and its
demand that a thinking turn with tool calls comes back with its `reasoning_content`; xAI's
reasoning models refusing penalties, `stop` and (but for grok-3-mini's low/high)
`reasoning_effort`; OpenRouter's `reasoning.effort` values.
"""

from typing import Any

from services.simulator.openai_profile import OpenAIProfile

THINKING_TYPES = ("enabled", "disabled")
REPLAY_MESSAGE = "The `reasoning_content` in the thinking mode must be passed back to the API."


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def reasons(profile: OpenAIProfile, body: dict[str, Any]) -> bool:
    """Whether the answer reasons: the model's own default, unless the provider's switch says."""
    thinking, reasoning = body.get("thinking"), body.get("reasoning")
    if profile.thinking_switch and isinstance(thinking, dict):
        return thinking.get("type") == "enabled"
    if (
        profile.reasoning_object is not None
        and isinstance(reasoning, dict)
        and (reasoning.get("enabled") is False or reasoning.get("effort") == "none")
    ):
        return False
    return body["model"] in profile.reasoning_models


def _missing_reasoning(messages: list[dict[str, Any]]) -> bool:
    return any(
        m.get("role") == "assistant"
        and m.get("tool_calls")
        and not isinstance(m.get("reasoning_content"), str)
        for m in messages
    )


def _deepseek(profile: OpenAIProfile, body: dict[str, Any]) -> str | None:
    thinking = body.get("thinking")
    if thinking is not None and (
        not isinstance(thinking, dict) or thinking.get("type") not in THINKING_TYPES
    ):
        return "thinking.type: unknown variant, expected `enabled` or `disabled`"
    if reasons(profile, body) and _missing_reasoning(body["messages"]):
        return REPLAY_MESSAGE
    return None


def _xai(
    limits: dict[str, tuple[str, ...]], profile: OpenAIProfile, body: dict[str, Any]
) -> str | None:
    model = body["model"]
    if model in profile.reasoning_models:
        for name in profile.reasoning_rejects:
            if body.get(name) is not None:
                return f"Model {model} does not support parameter {_camel(name)}."
    effort = body.get("reasoning_effort")
    if effort is None:
        return None
    allowed = limits.get(model)
    if allowed is None:
        return f"Model {model} does not support parameter reasoningEffort."
    if effort not in allowed:
        return f"Invalid reasoning effort '{effort}': expected one of {', '.join(allowed)}."
    return None


def _openrouter(efforts: tuple[str, ...], body: dict[str, Any]) -> str | None:
    reasoning = body.get("reasoning")
    if reasoning is None:
        return None
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else "?"
    if effort is not None and effort not in efforts:
        return f"Invalid reasoning.effort '{effort}': expected one of {', '.join(efforts)}"
    return None


def refusal(profile: OpenAIProfile, body: dict[str, Any]) -> str | None:
    """The provider's 400 message for what it refuses in `body` (a valid chat body), or None."""
    found = body.get("response_format")
    kind = found.get("type") if isinstance(found, dict) else None
    if found is not None and kind not in profile.json_types:
        return f"response_format.type: this response format type is unavailable: {kind}"
    if profile.thinking_switch and (problem := _deepseek(profile, body)):
        return problem
    if profile.reasoning_limits is not None and (
        problem := _xai(dict(profile.reasoning_limits), profile, body)
    ):
        return problem
    if profile.reasoning_object is not None:
        return _openrouter(profile.reasoning_object, body)
    return None
