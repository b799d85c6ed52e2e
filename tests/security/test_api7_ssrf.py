"""OWASP API7:2023 Server Side Request Forgery.

Upstream URLs come only from the operator's configuration (`*_BASE_URL`): no field of a request
can make a worker call another host. A local listener stands in for "another host" (a cloud
metadata service, an attacker's server): whatever a request says, it gets no connection, and
the call that does happen lands on the configured provider path of the simulator.
"""

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.helpers import assert_envelope, auth, chat_body, new_trace
from tests.security.support import register

REDIRECT_FIELDS = ("base_url", "api_base", "url", "baseURL", "endpoint", "host", "proxy")


class Trap:
    """A TCP listener that counts the connections it gets."""

    def __init__(self) -> None:
        self.connections = 0
        self.url = ""

    async def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@pytest.fixture
async def trap() -> AsyncIterator[Trap]:
    trap = Trap()
    server = await asyncio.start_server(trap.on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    trap.url = f"http://127.0.0.1:{port}"
    try:
        yield trap
    finally:
        server.close()
        await server.wait_closed()


async def simulator_records(simulator: httpx.AsyncClient, trace: str) -> list[dict[str, object]]:
    response = await simulator.get("/_sim/requests", params={"trace_id": trace})
    records: list[dict[str, object]] = response.json()["requests"]
    return records


def assert_on_the_configured_provider(
    records: list[dict[str, object]], simulator: httpx.AsyncClient, provider: str
) -> None:
    host = urlsplit(str(simulator.base_url)).netloc
    for record in records:
        headers = record["headers"]
        assert isinstance(headers, dict)
        assert headers["host"] == host
        assert str(record["path"]).startswith(f"/{provider}/"), record["path"]


async def test_fields_naming_another_host_are_refused(edge: httpx.AsyncClient, trap: Trap) -> None:
    _, token = await register(edge)
    for field in REDIRECT_FIELDS:
        body = chat_body("deepseek", "deepseek-chat", "hi", **{field: f"{trap.url}/v1"})
        response = await edge.post("/api/v1/chat", json=body, headers=auth(token))
        error = assert_envelope(response, 400, "validation_error")
        assert field in str(error["message"])
    assert trap.connections == 0


async def test_model_names_that_are_urls_never_leave_for_their_host(
    edge: httpx.AsyncClient, trap: Trap
) -> None:
    _, token = await register(edge)
    models = (
        "http://169.254.169.254/latest/meta-data/",
        f"{trap.url}/v1/chat/completions",
        "deepseek-chat@evil.example.com",
        f"@{trap.url.removeprefix('http://')}",
        "../../../etc/passwd",
    )
    for model in models:
        native = await edge.post(
            "/api/v1/chat", json=chat_body("deepseek", model, "hi"), headers=auth(token)
        )
        assert_envelope(native, 400, "validation_error")  # not a model the provider lists
        openai = await edge.post(
            "/v1/chat/completions",
            json={"model": f"deepseek/{model}", "messages": [{"role": "user", "content": "hi"}]},
            headers=auth(token),
        )
        # A malformed name is a 400, a well-formed one no provider lists a 404 (model_not_found).
        assert openai.status_code in (400, 404), openai.text
        prefixed = await edge.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            headers=auth(token),
        )
        assert prefixed.status_code in (400, 404), prefixed.text
    assert trap.connections == 0


async def test_what_a_lenient_route_accepts_still_goes_only_to_the_provider(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, trap: Trap
) -> None:
    """The OpenAI-compatible route refuses fields OpenAI does not define, or drops them when
    asked to (`drop_params`): either way the call goes only where the operator configured it.
    Header-bound URL fields (OpenRouter's `site_url`) are sent as headers to the provider,
    never fetched."""
    _, token = await register(edge)
    extras = dict.fromkeys(REDIRECT_FIELDS, trap.url)
    body = {
        "model": "deepseek/deepseek-chat",
        "messages": [{"role": "user", "content": "hi [[sim tokens=2]]"}],
        **extras,
    }
    refused = await edge.post("/v1/chat/completions", json=body, headers=auth(token))
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] in REDIRECT_FIELDS
    trace = new_trace()
    response = await edge.post(
        "/v1/chat/completions",
        json={**body, "drop_params": True},
        headers=auth(token, trace),
    )
    assert response.status_code == 200, response.text
    assert set(response.headers["x-dropped-params"].split(", ")) == set(REDIRECT_FIELDS)
    records = await simulator_records(simulator, trace)
    posts = [r for r in records if r["method"] == "POST"]
    assert len(posts) == 1
    assert_on_the_configured_provider(records, simulator, "deepseek")
    assert trap.url not in str(posts[0]["body"])

    trace = new_trace()
    body = chat_body(
        "openrouter",
        "openai/gpt-4o-mini",
        "hi [[sim tokens=2]]",
        site_url=f"{trap.url}/referer",
    )
    response = await edge.post("/api/v1/chat", json=body, headers=auth(token, trace))
    assert response.status_code == 200, response.text
    assert_on_the_configured_provider(
        await simulator_records(simulator, trace), simulator, "openrouter"
    )
    assert trap.connections == 0
