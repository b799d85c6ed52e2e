"""`API_BASE_URL` is the public URL the schema and the docs page send clients to."""

import httpx

from services.fleet.plan import FleetConfig
from tests.e2e.helpers import running_edge


async def test_the_schema_names_api_base_url_as_its_server(fleet: FleetConfig) -> None:
    public = "https://gateway.example.com"
    with running_edge(fleet, API_BASE_URL=public) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            schema = (await client.get("/openapi.json")).json()
    assert schema["servers"] == [{"url": public}]


async def test_without_api_base_url_the_schema_is_relative_to_its_own_host(
    edge: httpx.AsyncClient,
) -> None:
    assert "servers" not in (await edge.get("/openapi.json")).json()
