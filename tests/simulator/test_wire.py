"""SSE framing, pacing and the recorder, checked on the raw bytes with httpx."""

import time

import httpx
import orjson
import pytest

DEEPSEEK_AUTH = {"authorization": "Bearer sk-test"}
ANTHROPIC_AUTH = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


def _chat(text: str, **extra: object) -> dict[str, object]:
    return {"model": "deepseek-chat", "messages": [{"role": "user", "content": text}], **extra}


def _frames(raw: str) -> list[str]:
    return [frame for frame in raw.split("\n\n") if frame]


def test_deepseek_stream_framing(sim_url: str) -> None:
    response = httpx.post(
        f"{sim_url}/deepseek/chat/completions",
        headers=DEEPSEEK_AUTH,
        json=_chat("hi [[sim tokens=20]]", stream=True),
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = _frames(response.text)
    assert frames[0] == ": keep-alive"
    assert ": keep-alive" in frames[2:-1]
    assert frames[-1] == "data: [DONE]"
    data = [orjson.loads(f.removeprefix("data: ")) for f in frames[:-1] if f.startswith("data: ")]
    assert all(d["object"] == "chat.completion.chunk" and d["choices"] for d in data)
    assert len({d["id"] for d in data}) == 1
    assert data[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert len(data) == 22


def test_deepseek_midstream_error_chunk(sim_url: str) -> None:
    response = httpx.post(
        f"{sim_url}/deepseek/chat/completions",
        headers=DEEPSEEK_AUTH,
        json=_chat("hi [[sim fail=midstream]]", stream=True),
    )
    frames = [f for f in _frames(response.text) if f.startswith("data: {")]
    assert response.status_code == 200
    error_chunk = orjson.loads(frames[-1].removeprefix("data: "))
    assert error_chunk["error"]["code"] == "overloaded"
    assert error_chunk["choices"][0]["finish_reason"] == "error"
    assert response.text.endswith("data: [DONE]\n\n")


def test_anthropic_stream_event_sequence_and_padding(sim_url: str) -> None:
    body = {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "hi [[sim tokens=2]]"}],
    }
    response = httpx.post(f"{sim_url}/anthropic/v1/messages", headers=ANTHROPIC_AUTH, json=body)
    assert response.headers["request-id"].startswith("req_")
    events = []
    for frame in _frames(response.text):
        event_line, data_line = frame.split("\n")
        name = event_line.removeprefix("event: ")
        data = orjson.loads(data_line.removeprefix("data: "))
        assert data["type"] == name
        events.append(name)
        if name != "ping":
            assert data_line.endswith(" ")
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


@pytest.mark.parametrize("stream", [True, False])
def test_latency_delays_the_first_byte(sim_url: str, stream: bool) -> None:
    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"{sim_url}/anthropic/v1/messages",
        headers=ANTHROPIC_AUTH,
        json={
            "model": "m",
            "max_tokens": 9,
            "stream": stream,
            "messages": [{"role": "user", "content": "hi [[sim latency_ms=300]]"}],
        },
    ) as response:
        next(response.iter_bytes())
        assert time.monotonic() - started >= 0.3


def test_chunk_delay_paces_the_stream(sim_url: str) -> None:
    started = time.monotonic()
    response = httpx.post(
        f"{sim_url}/deepseek/chat/completions",
        headers=DEEPSEEK_AUTH,
        json=_chat("hi [[sim tokens=4 chunk_delay_ms=100]]", stream=True),
    )
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_deepseek_non_stream_latency_sends_blank_line_preamble(sim_url: str) -> None:
    response = httpx.post(
        f"{sim_url}/deepseek/chat/completions",
        headers=DEEPSEEK_AUTH,
        json=_chat("hi [[sim latency_ms=200]]"),
    )
    assert response.text.startswith("\n\n")
    assert orjson.loads(response.text.strip())["object"] == "chat.completion"


def test_disconnect_omits_terminal_events(sim_url: str) -> None:
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            f"{sim_url}/deepseek/chat/completions",
            headers=DEEPSEEK_AUTH,
            json=_chat("hi [[sim fail=disconnect]]", stream=True),
        ) as response,
    ):
        for chunk in response.iter_bytes():
            received += chunk
    assert b'"content":"' in received
    assert b"[DONE]" not in received
    assert b'finish_reason":"stop' not in received


def test_recorder_returns_what_was_sent(sim_url: str, trace_id: str) -> None:
    body = _chat("remember me", max_tokens=5)
    headers = {**DEEPSEEK_AUTH, "X-Request-Id": trace_id}
    reply = httpx.post(f"{sim_url}/deepseek/chat/completions", headers=headers, json=body).json()
    httpx.post(f"{sim_url}/deepseek/chat/completions", headers=DEEPSEEK_AUTH, json=body)

    found = httpx.get(f"{sim_url}/_sim/requests", params={"trace_id": trace_id}).json()
    [record] = found["requests"]
    assert record["method"] == "POST"
    assert record["path"] == "/deepseek/chat/completions"
    assert record["headers"]["x-request-id"] == trace_id
    assert record["headers"]["authorization"] == "Bearer sk-test"
    assert record["body"] == body
    assert record["status"] == 200
    assert record["reply"] == reply["choices"][0]["message"]["content"]
    assert record["usage"] == reply["usage"]


def test_recorder_keeps_failures_newest_last(sim_url: str, trace_id: str) -> None:
    headers = {**ANTHROPIC_AUTH, "x-request-id": trace_id}
    for text in ("first", "second [[sim fail=429]]"):
        httpx.post(
            f"{sim_url}/anthropic/v1/messages",
            headers=headers,
            json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": text}]},
        )
    records = httpx.get(f"{sim_url}/_sim/requests", params={"trace_id": trace_id}).json()
    assert [r["status"] for r in records["requests"]] == [200, 429]
    assert records["requests"][1]["outcome"] == "error"


def test_clear_empties_the_recorder(sim_url: str, trace_id: str) -> None:
    httpx.post(
        f"{sim_url}/deepseek/chat/completions",
        headers={**DEEPSEEK_AUTH, "x-request-id": trace_id},
        json=_chat("x"),
    )
    assert httpx.delete(f"{sim_url}/_sim/requests").status_code == 204
    assert httpx.get(f"{sim_url}/_sim/requests").json() == {"requests": []}
