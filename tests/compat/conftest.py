"""The matrix runs against the suite's fleet (tests/conftest.py), one fresh user per row."""

import httpx
import pytest

from services.fleet.plan import FleetConfig
from tests.compat.matrix import Ctx


@pytest.fixture
def ctx(fleet: FleetConfig, user_token: str, simulator: httpx.AsyncClient) -> Ctx:
    return Ctx(fleet, user_token, simulator)
