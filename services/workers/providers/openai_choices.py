"""The parts of an OpenAI-dialect answer beyond its first choice's text (docs/providers.md §0):
the further choices of a request with `n` > 1, and the tokens' log probabilities."""

from typing import Any

from services.workers.providers import think_tags
from services.workers.providers.openai_profiles import OpenAIProfile
from services.workers.providers.openai_wire import finish_reason, reasoning_of, tool_calls_of
from shared.messages import Alternative


def logprobs_of(choice: dict[str, Any]) -> dict[str, Any] | None:
    """The choice's `logprobs` object, when it holds any."""
    found = choice.get("logprobs")
    return found if isinstance(found, dict) and found.get("content") is not None else None


def alternatives(choices: list[dict[str, Any]], profile: OpenAIProfile) -> list[Alternative]:
    """The choices after the first, in their `index` order."""
    found = []
    for position, choice in enumerate(choices[1:], 1):
        message = choice.get("message") or {}
        content = message.get("content")
        reasoning = reasoning_of(message, profile)
        if profile.think_tags and isinstance(content, str):
            content, reasoning = think_tags.split(content)
        found.append(
            Alternative(
                index=int(choice.get("index") or position),
                finish_reason=finish_reason(choice.get("finish_reason")),
                content=content if isinstance(content, str) else None,
                reasoning_content=reasoning or None,
                tool_calls=tool_calls_of(message),
                logprobs=logprobs_of(choice),
            )
        )
    return sorted(found, key=lambda a: a.index)
