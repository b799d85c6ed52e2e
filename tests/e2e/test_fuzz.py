"""Schemathesis against the edge's own OpenAPI schema: whatever the input, never a 5xx, and
every error in the standard envelope with a trace id."""

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from services.fleet.plan import FleetConfig

EXAMPLES_PER_OPERATION = 12


@pytest.fixture(scope="module")
def fuzz_token(fleet: FleetConfig) -> str:
    body = {"email": "fuzz@example.com", "password": "correct-horse-battery", "name": "Fuzz"}
    with httpx.Client(base_url=fleet.edge_url) as client:
        response = client.post("/api/v1/auth/register", json=body)
        if response.status_code == 409:
            response = client.post("/api/v1/auth/login", json=body)
    token: str = response.json()["token"]
    return token


def check(case: schemathesis.Case, response: schemathesis.Response) -> None:
    what = f"{case.method} {case.formatted_path} {case.body!r:.300}: {response.text:.300}"
    assert response.status_code < 500, what
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["type"] and error["message"]
        assert [error["trace_id"]] == response.headers["x-request-id"]


def test_no_input_makes_the_edge_fail(fleet: FleetConfig, fuzz_token: str) -> None:
    schema = schemathesis.openapi.from_url(f"{fleet.edge_url}/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            check(case, case.call(headers=headers, timeout=30))

        fuzz()
