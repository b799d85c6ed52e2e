"""Deterministic embeddings and rerank scores, so tests can predict them.

A vector is derived from SHA-256 of the text alone (same text, same vector, on every route),
`DIMENSIONS` floats, unit length unless the caller asks for raw values. A rerank score is
word overlap: the share of the query's distinct lowercase words found in the document, mapped to
a logit `10 * overlap - 5` (NIM `logit`, TEI `raw_scores`) or its sigmoid (Cohere
`relevance_score`, TEI default). Ties keep the documents' order.
"""

import base64
import hashlib
import math
import re
import struct

DIMENSIONS = 16
_WORD = re.compile(r"\w+")


def vector(text: str, dimensions: int = DIMENSIONS, normalize: bool = True) -> list[float]:
    raw = b""
    counter = 0
    while len(raw) < dimensions * 2:
        raw += hashlib.sha256(counter.to_bytes(4, "big") + text.encode()).digest()
        counter += 1
    values = [v / 32768 for v in struct.unpack(f">{dimensions}h", raw[: dimensions * 2])]
    if normalize:
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        values = [v / norm for v in values]
    return [round(v, 6) for v in values]


def as_base64(values: list[float]) -> str:
    """`encoding_format: "base64"`: little-endian float32 values, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def overlap(query: str, document: str) -> float:
    wanted = _words(query)
    return len(wanted & _words(document)) / len(wanted) if wanted else 0.0


def logit(query: str, document: str) -> float:
    return round(10 * overlap(query, document) - 5, 4)


def sigmoid(value: float) -> float:
    return round(1 / (1 + math.exp(-value)), 6)


def ranked(query: str, documents: list[str]) -> list[tuple[int, float]]:
    """`(index, logit)` pairs, best first."""
    scored = [(i, logit(query, doc)) for i, doc in enumerate(documents)]
    return sorted(scored, key=lambda pair: (-pair[1], pair[0]))


def token_count(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)
