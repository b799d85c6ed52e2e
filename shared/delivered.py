"""What a stream cut short is billed: its prompt and the answer text that was delivered.

Estimated at about four characters a token, the same on both sides of the queue: the worker
reports it with the job's end, and the edge settles the caller's token budget and writes the
audit record with it when its client left mid-stream.
"""

import math

from shared.messages import DeltaEvent
from shared.schemas import ChatRequest, Usage

CHARS_PER_TOKEN = 4


def delta_chars(event: DeltaEvent) -> int:
    """The text a delta carries: content, reasoning and tool-call names and arguments."""
    tools = sum(len(call.arguments) + len(call.name or "") for call in event.tool_calls)
    return len(event.content) + len(event.reasoning_content) + tools


def delivered_usage(request: ChatRequest, delivered_chars: int) -> Usage:
    prompt_chars = sum(len(m.text()) for m in request.messages)
    prompt = math.ceil(prompt_chars / CHARS_PER_TOKEN)
    completion = math.ceil(delivered_chars / CHARS_PER_TOKEN)
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )
