"""Small helpers for talking to the running fleet."""

import httpx
import orjson


def chat_body(provider: str, model: str, text: str, **extra: object) -> dict[str, object]:
    return {
        "provider": provider,
        "model": model,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def auth(token: str, trace: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if trace:
        headers["X-Request-ID"] = trace
    return headers


async def upstream_record(simulator: httpx.AsyncClient, trace: str) -> dict[str, object]:
    response = await simulator.get("/_sim/requests", params={"trace_id": trace})
    records = response.json()["requests"]
    assert len(records) == 1, records
    record: dict[str, object] = records[0]
    return record


def upstream_usage(record: dict[str, object]) -> tuple[int, int]:
    """(prompt, completion) tokens as the provider reported them, in either dialect."""
    usage = record["usage"]
    assert isinstance(usage, dict)
    if "input_tokens" in usage:
        prompt = sum(
            usage.get(k) or 0
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        return prompt, usage["output_tokens"]
    return usage["prompt_tokens"], usage["completion_tokens"]


def sse_payloads(text: str) -> list[object]:
    frames = [f for f in text.split("\n\n") if f]
    assert all(f.startswith("data: ") for f in frames), frames
    return [f[6:] if f[6:] == "[DONE]" else orjson.loads(f[6:]) for f in frames]


def assert_envelope(response: httpx.Response, status: int, error_type: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type
    assert error["message"]
    assert error["trace_id"] == response.headers["x-request-id"]
    assert error["trace_id"].startswith("req_")
    return error
