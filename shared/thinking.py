"""Anthropic's signed thinking, kept in a message's `reasoning_details` and given back.

Anthropic answers with `thinking` blocks (text and a `signature`) and `redacted_thinking`
blocks (`data`), and wants them back unchanged in the assistant turn when a conversation goes on
after a tool call (docs/providers.md §1). The unified messages keep them as
`reasoning_details` entries, in OpenRouter's convention: `reasoning.text` (`text`,
`signature`) and `reasoning.encrypted` (`data`), `format: anthropic-claude-v1`. Reasoning
without a signature is never sent to Anthropic, which would refuse it.
"""

from typing import Any

THINKING_FORMAT = "anthropic-claude-v1"


def details_of(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An answer's (or a message's) thinking blocks as `reasoning_details` entries."""
    details: list[dict[str, Any]] = []
    for block in blocks:
        if block.get("type") == "thinking":
            text, signature = str(block.get("thinking") or ""), str(block.get("signature") or "")
            details.append(
                {
                    "type": "reasoning.text",
                    "text": text,
                    "signature": signature,
                    "format": THINKING_FORMAT,
                }
            )
        elif block.get("type") == "redacted_thinking":
            data = str(block.get("data") or "")
            details.append({"type": "reasoning.encrypted", "data": data, "format": THINKING_FORMAT})
    return details


def blocks_of(
    details: list[dict[str, Any]] | tuple[dict[str, Any], ...] | None,
) -> list[dict[str, Any]]:
    """The signed thinking among `reasoning_details`, as Anthropic's blocks."""
    blocks: list[dict[str, Any]] = []
    for detail in details or ():
        if detail.get("type") == "reasoning.text" and detail.get("signature"):
            text = str(detail.get("text") or "")
            blocks.append({"type": "thinking", "thinking": text, "signature": detail["signature"]})
        elif detail.get("type") == "reasoning.encrypted" and detail.get("data"):
            blocks.append({"type": "redacted_thinking", "data": detail["data"]})
    return blocks
