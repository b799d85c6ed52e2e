"""`GET /api/v1/admin/provider-stats` (reached by the edge, with an admin's token): each
provider's requests, server errors and latency over the last minutes, from the audit rows.

Requests the client cancelled are left out. `errors` are the requests answered with a 5xx
(the provider failed, timed out or its circuit was open); 4xx answers are the caller's doing.
Latency percentiles are of the successful requests, request to last byte.
"""

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Request

from services.audit.routes import RepoDep
from shared.errors import AuthenticationError, AuthorizationError
from shared.tokens import TokenVerifier

router = APIRouter()

_STATS = """
SELECT provider,
       count(*) AS requests,
       count(*) FILTER (WHERE status >= 500) AS errors,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE status < 400) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE status < 400) AS p95
FROM audit_log
WHERE at >= now() - make_interval(mins => $1) AND provider IS NOT NULL AND outcome <> 'cancelled'
GROUP BY provider
"""


def admin_caller(request: Request) -> str:
    """The user id of a verified admin token. The edge has confirmed the role with the auth
    service; the claim is checked here again so no other token reads every user's traffic."""
    verifier: TokenVerifier = request.app.state.verifier
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Missing bearer token")
    claims = verifier.verify(token.strip())
    if claims.role != "admin":
        raise AuthorizationError("Admin role required")
    return claims.sub


def stats_of(row: asyncpg.Record) -> dict[str, Any]:
    requests, errors = int(row["requests"]), int(row["errors"])
    latency = None
    if row["p50"] is not None:
        latency = {"p50": round(row["p50"], 1), "p95": round(row["p95"], 1)}
    return {
        "requests": requests,
        "errors": errors,
        "error_rate": round(errors / requests, 4) if requests else None,
        "latency_ms": latency,
    }


@router.get("/api/v1/admin/provider-stats")
async def provider_stats(
    admin: Annotated[str, Depends(admin_caller)],
    repo: RepoDep,
    minutes: Annotated[int, Query(ge=1, le=60)] = 5,
) -> dict[str, object]:
    rows = await repo.pool.fetch(_STATS, minutes)
    return {"minutes": minutes, "providers": {r["provider"]: stats_of(r) for r in rows}}
