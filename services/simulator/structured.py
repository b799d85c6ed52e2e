"""Structured output and log probabilities in OpenAI-dialect answers (docs/providers.md §0).

`response_format: {"type": "json_schema", ...}` (and NIM's `nvext.guided_json`) gets an answer
that fits the schema, every property filled (`schema_values.py`); `json_object` gets an object
that fits the schema the prompt spells out, if it does (JSON mode asks the prompt to say what to
give), else an object holding the reply's words. The JSON is streamed in pieces like any
reply. `logprobs: true` gets each content token's log probability (`top_logprobs` alternatives
each), made up but well formed.
"""

import json
from dataclasses import replace
from typing import Any

import orjson

from services.simulator import schema_values
from services.simulator.replies import Reply, text_of

PIECE_CHARACTERS = 6
_DECODER = json.JSONDecoder()
MAX_OBJECTS_TRIED = 50  # per message: a prompt holding a schema holds it early


def _prompted_schema(messages: Any) -> dict[str, Any]:
    """A JSON schema the messages spell out (JSON mode asks the prompt to say what JSON to
    give, and a model follows it), else `{}`."""
    for message in messages if isinstance(messages, list) else []:
        text = text_of(message.get("content")) if isinstance(message, dict) else ""
        starts = [i for i, c in enumerate(text) if c == "{"][:MAX_OBJECTS_TRIED]
        for start in starts:
            try:
                found, _ = _DECODER.raw_decode(text[start:])
            except ValueError:
                continue
            if isinstance(found, dict) and isinstance(found.get("properties"), dict):
                return found
    return {}


def wanted(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema the answer must fit (`{}`: any object), or None for free text."""
    nvext = body.get("nvext")
    if isinstance(nvext, dict) and isinstance(nvext.get("guided_json"), dict):
        schema: dict[str, Any] = nvext["guided_json"]
        return schema
    found = body.get("response_format")
    if not isinstance(found, dict) or found.get("type") not in ("json_object", "json_schema"):
        return None
    if found["type"] == "json_object":
        return _prompted_schema(body.get("messages"))
    spec = found.get("json_schema")
    inner = spec.get("schema") if isinstance(spec, dict) else None
    return inner if isinstance(inner, dict) else {}


def as_json(reply: Reply, schema: dict[str, Any]) -> Reply:
    """`reply` with its content replaced by JSON fitting `schema`."""
    value = schema_values.object_for(schema, all_properties=True) if schema else None
    text = orjson.dumps(value if value is not None else {"answer": reply.text.strip()}).decode()
    pieces = tuple(text[i : i + PIECE_CHARACTERS] for i in range(0, len(text), PIECE_CHARACTERS))
    return replace(reply, pieces=pieces, truncated=False)


def logprob(token: str, position: int, alternatives: int) -> dict[str, Any]:
    """One token's entry of `logprobs.content`, with `alternatives` entries in `top_logprobs`
    (the token itself first)."""
    value = -round(0.05 * (position % 7 + 1), 4)
    top = [
        {"token": token, "logprob": value, "bytes": list(token.encode())},
        *(
            {"token": f"{token}{n}", "logprob": value - n, "bytes": list(f"{token}{n}".encode())}
            for n in range(1, alternatives)
        ),
    ]
    return {"token": token, "logprob": value, "bytes": list(token.encode()), "top_logprobs": top}


def logprobs_of(body: dict[str, Any]) -> int | None:
    """How many alternatives each token's entry lists, or None without `logprobs`."""
    if body.get("logprobs") is not True:
        return None
    top = body.get("top_logprobs")
    return top if isinstance(top, int) and not isinstance(top, bool) and top > 0 else 0
