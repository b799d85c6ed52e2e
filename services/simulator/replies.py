"""Deterministic reply text, token counts and the per-request `[[sim ...]]` directives."""

import hashlib
import logging
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from services.simulator.config import SimulatorConfig
from services.simulator.garbage import GARBAGE
from services.simulator.gates import NAME as GATE_NAME

logger = logging.getLogger(__name__)

HTTP_FAILURES = frozenset({401, 402, 403, 429, 500, 503, 504, 529})
# error_body: an error reported with status 200, after the provider began (OpenRouter).
STREAM_FAILURES = frozenset({"disconnect", "midstream", "error_body"})
FAIL_AFTER_CHUNKS = 3

_DIRECTIVE = re.compile(r"\[\[sim\b([^\]]*)\]\]")
_FINISH = re.compile(r"^[a-z_]{1,64}$")
_KEY_FAILURE = re.compile(r"fail-(401|429|500)")
_INT_KEYS = (
    "tokens",
    "reasoning_tokens",
    "latency_ms",
    "chunk_delay_ms",
    "fail_times",
    "pending",
    "retry_after",
)
_VOCABULARY = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
    "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
    "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "amber",
    "birch", "cedar", "dune", "ember", "fjord", "grove", "harbor", "island", "jade",
    "kelp", "lagoon", "meadow", "nectar", "orchid", "pebble", "quartz", "river", "summit",
    "tundra", "umber", "valley", "willow", "yarrow", "zephyr", "the", "a", "of", "and",
    "to", "in", "is", "it", "that", "with", "for", "on", "as",
)  # fmt: skip


@dataclass(frozen=True)
class Directives:
    tokens: int
    reasoning_tokens: int
    latency_ms: int
    chunk_delay_ms: int
    fail: int | str | None = None
    tool: str | None = None
    tool_args: str | None = None
    fail_times: int | None = None  # fail only the first N attempts of a request
    pending: int = 0  # NIM hosted calls: answer 202 and make the caller poll this many times
    finish: str | None = None  # OpenAI dialect: this finish reason instead of the usual one
    hold: str | None = None  # wait for this gate to be released before answering (`gates.py`)
    retry_after: int = 1  # the `retry-after` seconds of a 429 (and Anthropic 529)

    def for_attempt(self, attempt: int) -> "Directives":
        """These directives for the `attempt`-th call (1-based) of the same request."""
        if self.fail_times is not None and attempt > self.fail_times:
            return replace(self, fail=None)
        return self

    @property
    def latency_s(self) -> float:
        return self.latency_ms / 1000

    @property
    def chunk_delay_s(self) -> float:
        return self.chunk_delay_ms / 1000


@dataclass(frozen=True)
class Reply:
    pieces: tuple[str, ...]
    reasoning_pieces: tuple[str, ...]
    truncated: bool
    prompt_tokens: int
    cache_read: int = 0  # of the prompt tokens, read from the provider's prompt cache
    cache_written: int = 0  # and written to it (`prompt_cache.py`)

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_pieces)

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces) + len(self.reasoning_pieces)


def _parse_fail(value: str) -> int | str | None:
    if value in STREAM_FAILURES or value in GARBAGE:
        return value
    if value.isdigit() and int(value) in HTTP_FAILURES:
        return int(value)
    logger.warning("ignoring unknown sim fail value %r", value)
    return None


def parse_directives(text: str, config: SimulatorConfig, api_key: str = "") -> Directives:
    """Directives from `[[sim k=v ...]]` in `text`; a `fail-NNN` API key wins over `fail=`."""
    values: dict[str, str] = {}
    for match in _DIRECTIVE.finditer(text):
        for pair in match.group(1).split():
            key, sep, value = pair.partition("=")
            if sep:
                values[key] = value
    ints = {k: int(values[k]) for k in _INT_KEYS if values.get(k, "").isdigit()}
    key_failure = _KEY_FAILURE.search(api_key)
    fail: int | str | None = None
    if key_failure:
        fail = int(key_failure.group(1))
    elif "fail" in values:
        fail = _parse_fail(values["fail"])
    return Directives(
        tokens=ints.get("tokens", config.tokens),
        reasoning_tokens=ints.get("reasoning_tokens", config.reasoning_tokens),
        latency_ms=ints.get("latency_ms", config.latency_ms),
        chunk_delay_ms=ints.get("chunk_delay_ms", config.chunk_delay_ms),
        fail=fail,
        tool=values.get("tool") or None,
        tool_args=values.get("tool_args") or None,
        fail_times=ints.get("fail_times"),
        pending=ints.get("pending", 0),
        retry_after=ints.get("retry_after", 1),
        finish=values["finish"] if _FINISH.match(values.get("finish", "")) else None,
        hold=values["hold"] if GATE_NAME.match(values.get("hold", "")) else None,
    )


def text_of(content: Any) -> str:
    """The text of a message `content`: a string, or the `text` of each block in a list
    (an Anthropic `tool_result` block contributes the text of its own `content`)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (_block_text(block) for block in content if isinstance(block, dict))
        return "\n".join(text for text in texts if text is not None)
    return ""


def _block_text(block: dict[str, Any]) -> str | None:
    if isinstance(block.get("text"), str):
        text: str = block["text"]
        return text
    if block.get("type") == "tool_result":
        return text_of(block.get("content"))
    return None


def count_words(texts: Iterable[str]) -> int:
    return sum(len(text.split()) for text in texts)


def seed_of(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _words(seed: bytes, salt: bytes, count: int) -> tuple[str, ...]:
    digest = hashlib.sha256(salt + seed).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    words = [rng.choice(_VOCABULARY) for _ in range(count)]
    return tuple(word if i == 0 else f" {word}" for i, word in enumerate(words))


def build_reply(
    seed: bytes,
    prompt_tokens: int,
    directives: Directives,
    max_tokens: int | None,
    reasoning: bool = False,
) -> Reply:
    """`directives.tokens` words (after reasoning words, if any), both capped by `max_tokens`."""
    budget = max_tokens if max_tokens is not None and max_tokens >= 0 else None
    wanted_reasoning = directives.reasoning_tokens if reasoning else 0
    wanted = wanted_reasoning + directives.tokens
    reasoning_count = wanted_reasoning if budget is None else min(wanted_reasoning, budget)
    content_count = (
        directives.tokens if budget is None else min(directives.tokens, budget - reasoning_count)
    )
    return Reply(
        pieces=_words(seed, b"content", content_count),
        reasoning_pieces=_words(seed, b"reasoning", reasoning_count),
        truncated=budget is not None and wanted > budget,
        prompt_tokens=prompt_tokens,
    )


def stop_at(reply: Reply, stops: Any) -> tuple[Reply, str | None]:
    """The reply cut before the first of `stops` it contains (which is not sent), and that stop
    sequence; the reply unchanged and None when none occurs."""
    text = reply.text
    found = [(text.find(s), s) for s in stops or [] if isinstance(s, str) and s and s in text]
    if not found:
        return reply, None
    end, stop = min(found)
    pieces, length = [], 0
    for piece in reply.pieces:
        if length + len(piece) > end:
            pieces.append(piece[: end - length])
            break
        pieces.append(piece)
        length += len(piece)
    kept = tuple(p for p in pieces if p)
    return replace(reply, pieces=kept, truncated=False), stop


def max_tokens_of(body: dict[str, Any]) -> int | None:
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
