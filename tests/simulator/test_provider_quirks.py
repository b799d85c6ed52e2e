"""Per-provider wire quirks (docs/providers.md §3-8), checked on the raw bytes with httpx."""

from typing import Any

import httpx
import orjson

AUTH = {"authorization": "Bearer sk-test"}


def _chat(model: str, text: str = "hi there", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def _data(raw: str) -> list[dict[str, Any]]:
    frames = [f for f in raw.split("\n\n") if f.startswith("data: {")]
    return [orjson.loads(f.removeprefix("data: ")) for f in frames]


def _records(sim_url: str, trace_id: str) -> list[dict[str, Any]]:
    found = httpx.get(f"{sim_url}/_sim/requests", params={"trace_id": trace_id}).json()
    records: list[dict[str, Any]] = found["requests"]
    return records


def test_xai_flat_errors(sim_url: str) -> None:
    url = f"{sim_url}/xai/v1/chat/completions"
    missing = httpx.post(url, json=_chat("grok-3"))
    wrong = httpx.post(
        url, headers={"authorization": "Bearer xai-fail-401-gA"}, json=_chat("grok-3")
    )
    limited = httpx.post(url, headers=AUTH, json=_chat("grok-3", "hi [[sim fail=429]]"))

    assert missing.status_code == 401
    assert missing.json() == {
        "code": "unauthenticated:no-credentials",
        "error": "No credentials provided",
    }
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "Client specified an invalid argument"
    assert wrong.json()["error"].startswith("Incorrect API key provided: xa***gA.")
    assert limited.status_code == 429
    assert set(limited.json()) == {"code", "error"}


def test_xai_stream_has_empty_deltas_without_finish_key(sim_url: str) -> None:
    body = _chat("grok-3-mini", "hi [[sim tokens=3 reasoning_tokens=2]]", stream=True)
    body["stream_options"] = {"include_usage": True}
    response = httpx.post(f"{sim_url}/xai/v1/chat/completions", headers=AUTH, json=body)
    chunks = _data(response.text)

    choices = [c["choices"][0] for c in chunks if c["choices"]]
    assert set(choices[0]["delta"]) == {"reasoning_content", "role"}
    assert {"index": 0, "delta": {}} in choices
    assert all("finish_reason" not in c for c in choices[:-1])
    assert choices[-1] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == 3
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 2
    assert usage["total_tokens"] == usage["prompt_tokens"] + 3 + 2
    assert response.text.endswith("data: [DONE]\n\n")


def test_xai_api_key_and_models(sim_url: str) -> None:
    key = httpx.get(f"{sim_url}/xai/v1/api-key", headers=AUTH)
    models = httpx.get(f"{sim_url}/xai/v1/models", headers=AUTH)
    anonymous = httpx.get(f"{sim_url}/xai/v1/models")
    assert key.json()["api_key_blocked"] is False
    assert "grok-4-1-fast-reasoning" in [m["id"] for m in models.json()["data"]]
    assert anonymous.status_code == 401


def test_openrouter_wire(sim_url: str, trace_id: str) -> None:
    headers = {
        **AUTH,
        "HTTP-Referer": "https://app.example",
        "X-Title": "Gateway",
        "x-request-id": trace_id,
    }
    url = f"{sim_url}/openrouter/chat/completions"
    plain = httpx.post(url, headers=headers, json=_chat("openai/gpt-4o", transforms=["middle-out"]))
    streamed = httpx.post(url, headers=headers, json=_chat("openai/gpt-4o", stream=True))

    assert plain.text.startswith("\n")
    completion = orjson.loads(plain.text.strip())
    assert completion["provider"] == "SimProvider"
    assert completion["choices"][0]["native_finish_reason"] == "stop"
    assert streamed.text.startswith(": OPENROUTER PROCESSING\n\n")
    chunks = _data(streamed.text)
    assert all(c["provider"] == "SimProvider" for c in chunks)
    assert chunks[-1]["choices"][0]["native_finish_reason"] == "stop"
    recorded = _records(sim_url, trace_id)[0]
    assert recorded["headers"]["http-referer"] == "https://app.example"
    assert recorded["headers"]["x-title"] == "Gateway"
    assert recorded["body"]["transforms"] == ["middle-out"]


def test_openrouter_errors_and_midstream(sim_url: str) -> None:
    url = f"{sim_url}/openrouter/v1/chat/completions"
    limited = httpx.post(url, headers=AUTH, json=_chat("m", "hi [[sim fail=429]]"))
    midstream = httpx.post(
        url, headers=AUTH, json=_chat("m", "hi [[sim fail=midstream]]", stream=True)
    )

    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == 429
    error_chunk = _data(midstream.text)[-1]
    assert midstream.status_code == 200
    assert error_chunk["error"]["message"] == "Provider disconnected unexpectedly"
    assert error_chunk["choices"][0]["finish_reason"] == "error"


def test_openrouter_models_public_and_key_check(sim_url: str) -> None:
    models = httpx.get(f"{sim_url}/openrouter/v1/models")
    key = httpx.get(f"{sim_url}/openrouter/v1/key", headers=AUTH)
    bad = httpx.get(f"{sim_url}/openrouter/v1/key", headers={"authorization": "Bearer fail-401"})
    assert "anthropic/claude-3-5-sonnet" in [m["id"] for m in models.json()["data"]]
    assert key.json()["data"]["is_free_tier"] is False
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == 401


def test_litellm_error_code_is_a_string_and_body_is_recorded(sim_url: str, trace_id: str) -> None:
    headers = {**AUTH, "x-request-id": trace_id}
    body = _chat(
        "gpt-4o", "hi [[sim fail=429]]", fallbacks=["gpt-4o-mini"], cache={"no-cache": True}
    )
    response = httpx.post(f"{sim_url}/litellm/chat/completions", headers=headers, json=body)
    models = httpx.get(f"{sim_url}/litellm/v1/models", headers=AUTH)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "429"
    assert response.json()["error"]["message"].startswith("litellm.RateLimitError")
    assert [m["id"] for m in models.json()["data"]][:3] == [
        "gpt-4o",
        "gpt-4o-mini",
        "claude-3-5-sonnet",
    ]
    recorded = _records(sim_url, trace_id)[0]
    assert recorded["body"]["fallbacks"] == ["gpt-4o-mini"]
    assert recorded["body"]["cache"] == {"no-cache": True}
    assert recorded["status"] == 429


def test_nim_errors_are_problem_json(sim_url: str) -> None:
    url = f"{sim_url}/nvidia_nim/v1/chat/completions"
    missing = httpx.post(url, json=_chat("meta/llama-3.3-70b-instruct"))
    failing = httpx.post(url, headers=AUTH, json=_chat("m", "hi [[sim fail=500]]"))
    assert missing.status_code == 401
    assert missing.json()["status"] == 401
    assert missing.json()["title"] == "Unauthorized"
    assert set(failing.json()) >= {"status", "title", "detail"}


def test_perplexity_cumulative_chunks_without_done(sim_url: str) -> None:
    body = _chat("sonar", "hi [[sim tokens=4]]", stream=True)
    body["web_search_options"] = {"search_context_size": "high"}
    response = httpx.post(f"{sim_url}/perplexity/chat/completions", headers=AUTH, json=body)
    chunks = _data(response.text)

    assert "[DONE]" not in response.text
    assert all(c["object"] == "chat.completion" for c in chunks)
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks]
    cumulative = [c["choices"][0]["message"]["content"] for c in chunks]
    assert cumulative == ["".join(pieces[: i + 1]) for i in range(len(pieces))]
    assert len(cumulative[-1].split()) == 4
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert len(final["citations"]) == 2
    assert final["search_results"][0]["url"] == final["citations"][0]
    assert final["usage"]["search_context_size"] == "high"
    assert "citations" not in chunks[0]


def test_perplexity_json_and_html_401(sim_url: str) -> None:
    url = f"{sim_url}/perplexity/chat/completions"
    completion = httpx.post(url, headers=AUTH, json=_chat("sonar")).json()
    unauthorized = httpx.post(url, json=_chat("sonar"))

    assert completion["citations"] == [r["url"] for r in completion["search_results"]]
    assert completion["usage"]["search_context_size"] == "low"
    assert completion["usage"]["num_search_queries"] == 1
    assert unauthorized.status_code == 401
    assert unauthorized.headers["content-type"].startswith("text/html")
    assert "401 Authorization Required" in unauthorized.text


def test_huggingface_models_and_errors(sim_url: str) -> None:
    models = httpx.get(f"{sim_url}/huggingface/v1/models", headers=AUTH).json()["data"]
    error = httpx.post(
        f"{sim_url}/huggingface/v1/chat/completions",
        headers=AUTH,
        json=_chat("meta-llama/Llama-3.1-8B-Instruct", "hi [[sim fail=503]]"),
    )
    assert "BAAI/bge-large-en-v1.5" in [m["id"] for m in models]
    assert models[0]["providers"][0]["provider"] == "together"
    assert error.status_code == 503
    assert set(error.json()) == {"error", "error_type"}


def test_403_in_each_providers_own_form(sim_url: str) -> None:
    def forbidden(path: str, model: str) -> httpx.Response:
        body = _chat(model, "hi [[sim fail=403]]")
        response = httpx.post(f"{sim_url}/{path}/chat/completions", headers=AUTH, json=body)
        assert response.status_code == 403, (path, response.text)
        return response

    deepseek = forbidden("deepseek", "deepseek-chat").json()["error"]
    assert (deepseek["type"], deepseek["code"]) == ("permission_error", "permission_denied")
    xai = forbidden("xai", "grok-3").json()
    assert set(xai) == {"code", "error"}
    assert "blocked" in xai["error"]
    openrouter = forbidden("openrouter", "openai/gpt-4o-mini").json()["error"]
    assert openrouter["code"] == 403
    assert "flagged" in openrouter["message"]
    assert openrouter["metadata"]["model_slug"] == "openai/gpt-4o-mini"
    assert set(openrouter["metadata"]) == {
        "reasons",
        "flagged_input",
        "provider_name",
        "model_slug",
    }
    litellm = forbidden("litellm", "gpt-4o").json()["error"]
    assert litellm["code"] == "403"
    assert litellm["message"].startswith("litellm.PermissionDeniedError: ")
    nim = forbidden("nvidia_nim", "meta/llama-3.3-70b-instruct").json()
    assert (nim["status"], nim["title"]) == (403, "Forbidden")
    perplexity = forbidden("perplexity", "sonar").json()["error"]
    assert (perplexity["type"], perplexity["code"]) == ("forbidden", 403)
    huggingface = forbidden("huggingface/v1", "meta-llama/Llama-3.1-8B-Instruct").json()
    assert set(huggingface) == {"error"}
    assert "permissions" in huggingface["error"]


def test_403_on_retrieval_routes(sim_url: str) -> None:
    body = {"model": "openai/text-embedding-3-small", "input": "x [[sim fail=403]]"}
    response = httpx.post(f"{sim_url}/openrouter/embeddings", headers=AUTH, json=body)

    assert response.status_code == 403
    assert response.json()["error"]["metadata"]["model_slug"] == body["model"]
