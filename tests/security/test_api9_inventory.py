"""OWASP API9:2023 Improper Inventory Management.

One OpenAPI schema (`GET /openapi.json` of the edge) lists every public route the edge serves,
compared here with the routes of the app itself; health, metrics and the docs pages are the only
routes left out. Internal routes (`/internal/...`) live on the internal services only and are
neither served nor listed by the edge. Every route of every internal service (auth, keyvault,
audit) is listed, with who calls it and with what credential, in `docs/internal-api.md`,
compared here with the routes each service's app serves.
"""

import importlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
from fastapi.routing import _IncludedRouter
from starlette.routing import BaseRoute

from services.edge.main import create_app
from shared.settings import Settings

UNLISTED = {
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/metrics",
    "/health/live",
    "/health/ready",
}
_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def served(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every HTTP route, through included routers."""
    for route in routes:
        if isinstance(route, _IncludedRouter):
            inner = prefix + route.include_context.prefix
            yield from served(route.original_router.routes, inner)
            continue
        path = _CONVERTER.sub(r"{\1}", prefix + str(getattr(route, "path", "")))
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                yield method, path


def edge_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(REDIS_URL="redis://unused.invalid:6379/0"))
    return set(served(app.routes))


def listed(schema: dict[str, object]) -> set[tuple[str, str]]:
    paths = schema["paths"]
    assert isinstance(paths, dict)
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


async def test_the_schema_lists_every_public_route_the_edge_serves(
    edge: httpx.AsyncClient,
) -> None:
    schema = (await edge.get("/openapi.json")).json()
    routes = edge_routes()
    public = {(m, p) for m, p in routes if p not in UNLISTED}
    assert public <= listed(schema), public - listed(schema)
    assert listed(schema) <= routes, listed(schema) - routes  # nothing listed that is not served
    for method, path in listed(schema) - {("GET", "/health/live"), ("GET", "/health/ready")}:
        assert path.startswith(("/api/v1/", "/v1/")), (method, path)
    operation_ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))


async def test_internal_routes_are_neither_served_nor_listed_by_the_edge(
    edge: httpx.AsyncClient,
) -> None:
    assert not [p for _, p in edge_routes() if p.startswith("/internal")]
    schema = (await edge.get("/openapi.json")).text
    assert "/internal" not in schema
    for path in ("/internal/v1/keys/key_x/secret", "/internal/v1/api-keys/resolve"):
        assert (await edge.get(path)).status_code == 404


async def test_the_auth_routes_are_documented_with_their_bodies(edge: httpx.AsyncClient) -> None:
    schema = (await edge.get("/openapi.json")).json()
    register = schema["paths"]["/api/v1/auth/register"]["post"]
    body = register["requestBody"]["content"]["application/json"]["schema"]
    assert {"email", "password", "name"} <= set(body["properties"])
    assert "201" in register["responses"]


INTERNAL_SERVICES = ("auth", "keyvault", "audit")
_LISTED_ROUTE = re.compile(r"^\| `([A-Z]+)` \| `([^`]+)` \|")


def internal_listing() -> dict[str, set[tuple[str, str]]]:
    """(method, path) of every route `docs/internal-api.md` lists, by service section."""
    listing: dict[str, set[tuple[str, str]]] = {}
    section: str | None = None
    for line in (Path(__file__).parents[2] / "docs" / "internal-api.md").read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            listing[section] = set()
        elif (match := _LISTED_ROUTE.match(line)) and section is not None:
            listing[section].add((match.group(1), match.group(2)))
    return listing


def internal_routes(service: str) -> set[tuple[str, str]]:
    module = importlib.import_module(f"services.{service}.main")
    settings = Settings(
        REDIS_URL="redis://unused.invalid:6379/0",
        DATABASE_URL="postgresql://unused@unused.invalid/unused",
    )
    return set(served(module.create_app(settings).routes))


def test_every_internal_route_is_listed_and_every_listed_route_is_served() -> None:
    listing = internal_listing()
    assert set(listing) == set(INTERNAL_SERVICES)
    for service in INTERNAL_SERVICES:
        routes = internal_routes(service)
        assert routes - listing[service] == set(), f"{service} serves routes not listed"
        assert listing[service] - routes == set(), f"{service}: listed but not served"
