"""`fail=bad_json|bad_sse|bad_list|bad_text|bad_usage|huge`: a broken provider's answers, on the
raw bytes, for the OpenAI dialect and Anthropic, streamed and not."""

import httpx
import orjson
import pytest

from services.simulator.garbage import HTML_PAGE, HUGE_BYTES

OPENAI = ("/deepseek/chat/completions", {"authorization": "Bearer sk-test"}, "deepseek-chat")
ANTHROPIC = (
    "/anthropic/v1/messages",
    {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
    "claude-sonnet-4-20250514",
)


def _post(
    sim_url: str, dialect: tuple[str, dict[str, str], str], fail: str, stream: bool
) -> httpx.Response:
    path, headers, model = dialect
    body = {
        "model": model,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": f"hi [[sim fail={fail}]]"}],
        "stream": stream,
    }
    return httpx.post(f"{sim_url}{path}", headers=headers, json=body)


def _events(text: str) -> list[object]:
    """The data of each SSE event; a cut-off JSON one as its raw text."""
    payloads: list[object] = []
    for frame in text.split("\n\n"):
        data = [line[6:] for line in frame.split("\n") if line.startswith("data: ")]
        if data and data[0] != "[DONE]":
            try:
                payloads.append(orjson.loads(data[0]))
            except orjson.JSONDecodeError:
                payloads.append(data[0])
    return payloads


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC], ids=["openai", "anthropic"])
def test_bad_json_is_cut_off_json(sim_url: str, dialect: tuple[str, dict[str, str], str]) -> None:
    answer = _post(sim_url, dialect, "bad_json", stream=False)
    assert answer.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(answer.content)
    streamed = _post(sim_url, dialect, "bad_json", stream=True)
    assert streamed.status_code == 200
    assert any(isinstance(event, str) for event in _events(streamed.text))


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC], ids=["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_bad_sse_is_an_html_page(
    sim_url: str, dialect: tuple[str, dict[str, str], str], stream: bool
) -> None:
    answer = _post(sim_url, dialect, "bad_sse", stream)
    assert answer.status_code == 200
    assert answer.content.endswith(HTML_PAGE)  # after DeepSeek's opening `: keep-alive`
    assert b"data:" not in answer.content


def test_openai_wrong_types(sim_url: str) -> None:
    choices = _post(sim_url, OPENAI, "bad_list", stream=False).json()["choices"]
    assert isinstance(choices, str)
    message = _post(sim_url, OPENAI, "bad_text", stream=False).json()["choices"][0]["message"]
    assert message["content"] == 12345
    usage = _post(sim_url, OPENAI, "bad_usage", stream=False).json()["usage"]
    assert usage["prompt_tokens"] < 0 and isinstance(usage["completion_tokens"], str)

    events = _events(_post(sim_url, OPENAI, "bad_list", stream=True).text)
    assert isinstance(events[0], dict) and isinstance(events[0]["choices"], str)
    events = _events(_post(sim_url, OPENAI, "bad_text", stream=True).text)
    assert isinstance(events[0], dict) and events[0]["choices"][0]["delta"]["content"] == 12345
    events = _events(_post(sim_url, OPENAI, "bad_usage", stream=True).text)
    assert isinstance(events[0], dict) and events[0]["usage"]["prompt_tokens"] < 0


def test_anthropic_wrong_types(sim_url: str) -> None:
    assert isinstance(_post(sim_url, ANTHROPIC, "bad_list", stream=False).json()["content"], str)
    content = _post(sim_url, ANTHROPIC, "bad_text", stream=False).json()["content"]
    assert content == [{"type": "text", "text": 12345}]
    usage = _post(sim_url, ANTHROPIC, "bad_usage", stream=False).json()["usage"]
    assert usage["input_tokens"] < 0 and isinstance(usage["output_tokens"], str)

    def first_delta(fail: str) -> dict[str, object]:
        events = _events(_post(sim_url, ANTHROPIC, fail, stream=True).text)
        deltas = [e for e in events if isinstance(e, dict) and e["type"] == "content_block_delta"]
        assert events[-1] == {"type": "message_stop"}
        return deltas[0]

    assert isinstance(first_delta("bad_list")["delta"], str)
    assert first_delta("bad_text")["delta"] == {"type": "text_delta", "text": 12345}
    usage = first_delta("bad_usage")["usage"]
    assert isinstance(usage, dict) and usage["input_tokens"] < 0


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC], ids=["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_huge_sends_text_as_long_as_it_is_read(
    sim_url: str, dialect: tuple[str, dict[str, str], str], stream: bool
) -> None:
    path, headers, model = dialect
    body = {
        "model": model,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi [[sim fail=huge]]"}],
        "stream": stream,
    }
    read = 0
    with httpx.stream("POST", f"{sim_url}{path}", headers=headers, json=body) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            read += len(chunk)
            if read > 4 * 1024 * 1024:
                break  # and the connection is dropped, long before HUGE_BYTES
    assert 4 * 1024 * 1024 < read < HUGE_BYTES
