"""The playground: pick a provider's model, send a message, watch the answer stream in.

The page's script posts to `/console/playground/stream`, which relays the edge's Server-Sent
Events as they arrive; without scripts the form posts to `/console/playground` and the page
comes back with the whole answer.
"""

import contextlib
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from services.console.edge import EdgeError, edge_of
from services.console.pages import SessionDep, render
from shared.errors import InvalidRequest, PayloadTooLarge

router = APIRouter()

MAX_MESSAGE = 100_000
_MAX_BODY = 2 * MAX_MESSAGE + 4096
_MAX_MODELS = 300


def chat_body(fields: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """The edge's chat request for the playground's fields; 400 naming a bad one."""
    provider, _, model = str(fields.get("model") or "").partition("/")
    message = str(fields.get("message") or "").strip()
    if not provider or not model:
        raise InvalidRequest("Choose a model")
    if not message:
        raise InvalidRequest("Write a message")
    messages = []
    if system := str(fields.get("system") or "").strip():
        messages.append({"role": "system", "content": system[:MAX_MESSAGE]})
    messages.append({"role": "user", "content": message[:MAX_MESSAGE]})
    body: dict[str, Any] = {
        "provider": provider[:64],
        "model": model[:200],
        "messages": messages,
        "stream": stream,
    }
    for name, kind in (("max_tokens", int), ("temperature", float)):
        value = str(fields.get(name) or "").strip()
        if value:
            try:
                body[name] = kind(value)
            except ValueError:
                raise InvalidRequest(f"'{name}' must be a number") from None
    return body


def cost_of(header: str | None) -> float | str | None:
    """What the answer cost (`X-Gateway-Cost-USD`): dollars, `unpriced`, or None if not said."""
    if header is None or header == "unpriced":
        return header
    try:
        return float(header)
    except ValueError:
        return None


async def page(
    request: Request,
    token: str,
    status_code: int = 200,
    *,
    error: str | None = None,
    fields: dict[str, Any] | None = None,
    answer: dict[str, Any] | None = None,
) -> Response:
    listing = await edge_of(request).json(request, "GET", "/api/v1/providers", token)
    providers = [
        {"id": p["id"], "name": p["name"], "models": p["models"][:_MAX_MODELS]}
        for p in listing["providers"]
        if p["status"] == "active" and "chat" in p["capabilities"] and p["models"]
    ]
    return render(
        request,
        "playground.html",
        status_code,
        error=error,
        providers=providers,
        fields=fields or {},
        answer=answer,
    )


@router.get("/playground")
async def playground(request: Request, session: SessionDep) -> Response:
    return await page(request, session.token)


@router.post("/playground")
async def playground_send(request: Request, session: SessionDep) -> Response:
    """Without scripts: the whole answer, in the page."""
    form = await request.form()
    fields = {k: form.get(k) for k in ("model", "message", "system", "max_tokens", "temperature")}
    try:
        body = chat_body(fields, stream=False)
        response = await edge_of(request).call(
            request, "POST", "/api/v1/chat", session.token, json=body
        )
        answer = response.json()
        answer["cost"] = cost_of(response.headers.get("x-gateway-cost-usd"))
    except (InvalidRequest, EdgeError) as exc:
        if isinstance(exc, EdgeError) and exc.status == 401:
            raise
        status = exc.status
        return await page(request, session.token, status, error=exc.message, fields=fields)
    return await page(request, session.token, fields=fields, answer=answer)


@router.post("/playground/stream")
async def playground_stream(request: Request, session: SessionDep) -> Response:
    """The edge's event stream for the page's script, relayed event by event."""
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise PayloadTooLarge("The message is too long")
    try:
        fields = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("Request body is not valid JSON") from None
    if not isinstance(fields, dict):
        raise InvalidRequest("Request body must be a JSON object")
    body = chat_body(fields, stream=True)
    stack = contextlib.AsyncExitStack()
    upstream = await stack.enter_async_context(
        edge_of(request).stream(request, "/api/v1/chat", session.token, body)
    )
    if upstream.status_code != 200:
        await upstream.aread()
        await stack.aclose()
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type", "application/json"),
        )

    async def relay() -> Any:
        async with stack:  # the browser leaving closes the edge's stream, which stops the job
            async for chunk in upstream.aiter_raw():
                yield chunk

    return StreamingResponse(relay(), media_type="text/event-stream")
