"""The providers' prompt caches, as the simulator keeps them (a simulated token is a word).

Anthropic (providers.md §1, prompt caching): the prompt up to and including a block marked
`cache_control` (system blocks first, then each message's blocks) is a cache breakpoint when it
holds at least the model's minimum (1024 tokens; 2048 on the Haiku models). The longest
breakpoint already cached is read (`cache_read_input_tokens`); a longer one is written
(`cache_creation_input_tokens`); `input_tokens` are the rest. An entry lives five minutes,
refreshed by every read.

DeepSeek (providers.md §2, context caching): every prompt is cached in units of 64 tokens from
its start; a later prompt under the same key that repeats cached units reads them
(`prompt_cache_hit_tokens`). Prompts under 64 tokens are never cached.

Entries are keyed by the caller's key and the model; the cache holds a bounded number of them.
"""

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from services.simulator.replies import text_of

TTL_SECONDS = 300.0
MAX_ENTRIES = 20_000
DEEPSEEK_UNIT = 64


@dataclass(frozen=True)
class Cached:
    read: int = 0
    written: int = 0


def _minimum(model: str) -> int:
    return 2048 if "haiku" in model else 1024


def _blocks(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(role, block) of the prompt in cache order: the system blocks, then each message's."""
    system = body.get("system")
    found = [("system", b) for b in _as_blocks(system)] if system else []
    for message in body.get("messages") or []:
        found += [(str(message.get("role")), b) for b in _as_blocks(message.get("content"))]
    return found


def _as_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


class PromptCache:
    def __init__(self, ttl: float = TTL_SECONDS, size: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, float] = OrderedDict()

    def _hit(self, digest: str) -> bool:
        expiry = self._entries.get(digest)
        if expiry is None or expiry < time.monotonic():
            return False
        self._store(digest)
        return True

    def _store(self, digest: str) -> None:
        self._entries[digest] = time.monotonic() + self.ttl
        self._entries.move_to_end(digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def anthropic(self, key: str, body: dict[str, Any]) -> Cached:
        model = str(body.get("model"))
        running = hashlib.sha256(f"anthropic\0{key}\0{model}".encode())
        tokens, breakpoints = 0, []
        for role, block in _blocks(body):
            unmarked = {k: v for k, v in block.items() if k != "cache_control"}
            running.update(role.encode() + repr(sorted(unmarked.items())).encode())
            tokens += len(text_of([block]).split())
            if "cache_control" in block and tokens >= _minimum(model):
                breakpoints.append((tokens, running.hexdigest()))
        read = max((t for t, digest in breakpoints if self._hit(digest)), default=0)
        for _, digest in breakpoints:
            self._store(digest)
        longest = breakpoints[-1][0] if breakpoints else 0
        return Cached(read=read, written=max(0, longest - read))

    def deepseek(self, key: str, model: str, messages: list[dict[str, Any]]) -> Cached:
        running = hashlib.sha256(f"deepseek\0{key}\0{model}".encode())
        count, units = 0, []
        for message in messages:
            role = str(message.get("role")).encode()
            for word in text_of(message.get("content")).split():
                running.update(role + b"\0" + word.encode() + b"\0")
                count += 1
                if count % DEEPSEEK_UNIT == 0:
                    units.append((count, running.hexdigest()))
        read = max((n for n, digest in units if self._hit(digest)), default=0)
        for _, digest in units:
            self._store(digest)
        return Cached(read=read)
