"""A broken provider's answers, for `fail=bad_json|bad_sse|bad_list|bad_text|bad_usage|huge`.

Each takes the answer the simulator would have sent (a JSON body, or the frames of a stream) and
breaks it the one named way, in the dialect's own fields; the HTTP status stays 200. Streams are
broken before their first reply text, then end as usual (`[DONE]`, `message_stop`).
"""

import asyncio
import copy
from collections.abc import Callable, Iterable
from typing import Any, Final

from starlette.responses import Response

from services.simulator import wire

GARBAGE: Final = frozenset({"bad_json", "bad_sse", "bad_list", "bad_text", "bad_usage", "huge"})
HUGE_BYTES: Final = 512 * 1024 * 1024
HTML_PAGE: Final = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>502 Bad Gateway</h1></body></html>\n"
)
BAD_USAGE: Final = {
    "openai": {"prompt_tokens": -5, "completion_tokens": "7", "total_tokens": 2},
    "anthropic": {"input_tokens": -5, "output_tokens": "7"},
}
_HUGE_MARK: Final = "@@sim-huge-text@@"
_HUGE_PIECE: Final = b"a" * 65_536


def broken(kind: str, dialect: str, answer: dict[str, Any]) -> dict[str, Any]:
    """A copy of `answer` (an OpenAI completion or chunk, an Anthropic message or
    `content_block_delta` event) with its usage, reply list or reply text of the wrong type,
    or its reply text the huge mark."""
    value = copy.deepcopy(answer)
    if kind == "bad_usage":
        value["usage"] = BAD_USAGE[dialect]
        return value
    text = _HUGE_MARK if kind == "huge" else 12345
    if "choices" in value:
        if kind == "bad_list":
            value["choices"] = "Hello"
        else:
            choice = value["choices"][0]
            choice["delta" if "delta" in choice else "message"]["content"] = text
    elif "delta" in value:
        value["delta"] = "Hello" if kind == "bad_list" else {**value["delta"], "text": text}
    else:
        value["content"] = "Hello" if kind == "bad_list" else [{"type": "text", "text": text}]
    return value


async def huge(payload: bytes) -> wire.Body:
    """`payload` with its huge mark replaced by HUGE_BYTES of text, made as it is sent."""
    head, _, tail = payload.partition(_HUGE_MARK.encode())
    yield head
    for _ in range(HUGE_BYTES // len(_HUGE_PIECE)):
        await asyncio.sleep(0)  # lets a client that left cancel the rest
        yield _HUGE_PIECE
    yield tail


def json_answer(kind: str, dialect: str, answer: dict[str, Any]) -> Response:
    """The non-streamed answer, broken the `kind` way."""
    if kind == "bad_sse":
        return Response(HTML_PAGE, media_type="text/html")
    if kind == "bad_json":
        payload = wire.dumps(answer)
        return Response(payload[: len(payload) // 2], media_type="application/json")
    if kind == "huge":
        body = huge(wire.dumps(broken(kind, dialect, answer)))
        return wire.DroppableStream(body, media_type="application/json")
    return wire.json_response(broken(kind, dialect, answer))


async def frames(
    kind: str,
    dialect: str,
    first: dict[str, Any],
    frame: Callable[[dict[str, Any]], bytes],
    around: tuple[Iterable[bytes], Iterable[bytes]] = ((), ()),
) -> wire.Body:
    """A stream broken at `first`, its first reply chunk or event (made a frame by `frame`),
    between the usual frames `around` it; `bad_sse` sends only an HTML page."""
    if kind == "bad_sse":
        yield HTML_PAGE
        return
    before, after = around
    for piece in before:
        yield piece
    if kind == "bad_json":
        good = frame(first)
        yield good[: len(good) // 2] + b"\n\n"
    elif kind == "huge":
        async for huge_piece in huge(frame(broken(kind, dialect, first))):
            yield huge_piece
    else:
        yield frame(broken(kind, dialect, first))
    for piece in after:
        yield piece
