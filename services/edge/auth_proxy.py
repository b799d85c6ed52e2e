"""`/api/v1/auth/*` is served by the auth service; the edge forwards it."""

import httpx
from fastapi import APIRouter, Request, Response

from shared.errors import ServiceUnavailable
from shared.http import trace_id

router = APIRouter()

_FORWARDED_HEADERS = ("authorization", "content-type", "user-agent")


@router.post("/api/v1/auth/{path:path}", include_in_schema=False)
async def forward(path: str, request: Request) -> Response:
    client: httpx.AsyncClient = request.app.state.auth_client
    headers = {h: v for h in _FORWARDED_HEADERS if (v := request.headers.get(h)) is not None}
    headers["x-request-id"] = trace_id(request)
    if request.client is not None:
        headers["x-forwarded-for"] = request.client.host
    try:
        upstream = await client.post(
            f"/api/v1/auth/{path}", content=await request.body(), headers=headers
        )
    except httpx.HTTPError as exc:
        raise ServiceUnavailable("The auth service is unavailable") from exc
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type"),
    )
