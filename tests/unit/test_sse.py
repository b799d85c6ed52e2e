"""The upstream SSE parser follows docs/providers.md §0's tolerance rules."""

from collections.abc import AsyncIterator

from services.workers.sse import SseEvent, parse_sse


async def lines_of(text: str) -> AsyncIterator[str]:
    for line in text.splitlines(keepends=True):
        yield line


async def parse(text: str) -> list[SseEvent]:
    return [event async for event in parse_sse(lines_of(text))]


async def test_named_events_comments_padding_and_crlf() -> None:
    text = (
        ": keep-alive\r\n\r\n"
        "event: message_start\r\n"
        'data: {"type":"message_start"}   \r\n\r\n'
        ": OPENROUTER PROCESSING\n\n"
        'data:{"a":1}\n\n'
        "data: [DONE]\n\n"
    )
    assert await parse(text) == [
        SseEvent("message_start", '{"type":"message_start"}'),
        SseEvent(None, '{"a":1}'),
        SseEvent(None, "[DONE]"),
    ]


async def test_multi_line_data_is_joined_and_a_final_event_without_blank_line_is_kept() -> None:
    assert await parse("data: first\ndata: second\n\ndata: last") == [
        SseEvent(None, "first\nsecond"),
        SseEvent(None, "last"),
    ]
