"""What Anthropic refuses in a Messages request, and its extended thinking (docs/providers.md §1).

Refused with a 400 `invalid_request_error`, in Anthropic's words: `top_k` that is not a positive
integer; a `service_tier` other than `auto` or `standard_only`; `metadata` with anything but
`user_id`; `thinking` enabled without a `budget_tokens` of at least 1024 below `max_tokens`, or
together with a forced tool (`tool_choice` `any` or `tool`), a `temperature` other than 1 or a
`top_k`; a `thinking` block sent back whose `signature` is not the one Anthropic gave it; and,
with thinking on, a last assistant turn that calls tools without starting with its thinking.

Thinking answers carry a `thinking` block (the reply's reasoning words) signed with this
simulator's key; streamed, it is `thinking_delta`s, then a `signature_delta`.
"""

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterator
from typing import Any

_KEY = secrets.token_bytes(32)
MIN_BUDGET = 1024
SERVICE_TIERS = ("auto", "standard_only")


def sign(thinking: str) -> str:
    digest = hmac.new(_KEY, thinking.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def thinking_on(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") == "enabled"


def _thinking_problem(body: dict[str, Any]) -> str | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
        return "thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled'"
    if thinking["type"] == "disabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < MIN_BUDGET:
        return (
            f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_BUDGET}"
        )
    if budget >= body["max_tokens"]:
        return "`max_tokens` must be greater than `thinking.budget_tokens`"
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    if body.get("temperature") not in (None, 1):
        return "`temperature` may only be set to 1 when thinking is enabled."
    if body.get("top_k") is not None:
        return "`top_k` may not be set when thinking is enabled."
    return None


def _history_problem(body: dict[str, Any]) -> str | None:
    assistants = [(i, m) for i, m in enumerate(body["messages"]) if m.get("role") == "assistant"]
    for i, message in assistants:
        content = message.get("content")
        for j, block in enumerate(content if isinstance(content, list) else []):
            if not isinstance(block, dict) or block.get("type") != "thinking":
                continue
            text, signature = str(block.get("thinking", "")), block.get("signature")
            if not isinstance(signature, str) or not hmac.compare_digest(signature, sign(text)):
                return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    if not thinking_on(body) or not assistants:
        return None
    i, last = assistants[-1]
    blocks = [b for b in last.get("content") or [] if isinstance(b, dict)]
    calls = any(b.get("type") == "tool_use" for b in blocks)
    if calls and blocks[0].get("type") not in ("thinking", "redacted_thinking"):
        return (
            f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            f"`{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` message "
            "must start with a thinking block."
        )
    return None


def problem(body: dict[str, Any]) -> str | None:
    """Anthropic's message for what it refuses in `body` (a valid message body), or None."""
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        return "top_k: Input should be a valid positive integer"
    tier = body.get("service_tier")
    if tier is not None and tier not in SERVICE_TIERS:
        return "service_tier: Input should be 'auto' or 'standard_only'"
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        return "metadata: only `user_id` is permitted"
    return _thinking_problem(body) or _history_problem(body)


def thinking_block(reasoning: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": reasoning, "signature": sign(reasoning)}


def thinking_events(pieces: tuple[str, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    """A streamed thinking block at index 0: its deltas, then its signature."""
    block = {"type": "thinking", "thinking": "", "signature": ""}
    yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    for piece in pieces:
        delta = {"type": "thinking_delta", "thinking": piece}
        yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    delta = {"type": "signature_delta", "signature": sign("".join(pieces))}
    yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
