"""Reasoning that a provider writes into the content, between `<think>` and `</think>`
(Perplexity's reasoning models, docs/providers.md §7), moved out as reasoning.

Only a `<think>` block opening the answer (after whitespace) is reasoning; the whitespace after
`</think>` is dropped. A tag may be cut across stream chunks: text that may still become one is
held back until the next piece (or the end) decides.
"""

from dataclasses import dataclass
from typing import Literal

OPEN, CLOSE = "<think>", "</think>"


def _tag_start(text: str, tag: str) -> int:
    """Where a suffix of `text` that begins `tag` starts (len(text) when none does)."""
    for start in range(max(0, len(text) - len(tag) + 1), len(text)):
        if tag.startswith(text[start:]):
            return start
    return len(text)


@dataclass
class ThinkTags:
    state: Literal["start", "think", "gap", "answer"] = "start"
    held: str = ""

    def feed(self, text: str, *, end: bool = False) -> tuple[str, str]:
        """(content, reasoning) of `text`, given what came before; `end` releases what is
        held."""
        self.held += text
        content = reasoning = ""
        if self.state == "start":
            opening = self.held.lstrip()
            if opening.startswith(OPEN):
                self.state, self.held = "think", opening[len(OPEN) :]
            elif OPEN.startswith(opening) and not end:
                return "", ""
            else:
                self.state = "answer"
        if self.state == "think":
            close = self.held.find(CLOSE)
            if close < 0:
                cut = len(self.held) if end else _tag_start(self.held, CLOSE)
                reasoning, self.held = self.held[:cut], self.held[cut:]
                return "", reasoning
            reasoning, self.held = self.held[:close], self.held[close + len(CLOSE) :]
            self.state = "gap"
        if self.state == "gap":
            self.held = self.held.lstrip()
            if not self.held:
                return "", reasoning
            self.state = "answer"
        content, self.held = self.held, ""
        return content, reasoning


def split(text: str) -> tuple[str, str]:
    """(content, reasoning) of a whole answer."""
    return ThinkTags().feed(text, end=True)
