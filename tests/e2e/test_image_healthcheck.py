"""The image's HEALTHCHECK (`python -m shared.healthcheck`) against the running fleet: healthy
when the container's service answers /health/live, whichever service it is, else unhealthy."""

import os
import subprocess
import sys

import pytest

from services.fleet.infra import free_port
from services.fleet.plan import FleetConfig


def healthcheck(**ports: int) -> subprocess.CompletedProcess[str]:
    """The check as a container of one service runs it: every other port closed."""
    closed = {name: str(free_port()) for name in ("PORT", "AUTH_PORT", "KEYVAULT_PORT")}
    closed |= {"AUDIT_PORT": str(free_port()), "METRICS_PORT": str(free_port())}
    env = {**os.environ, "HOST": "0.0.0.0", **closed, **{k: str(v) for k, v in ports.items()}}
    return subprocess.run(
        [sys.executable, "-m", "shared.healthcheck"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("service", ["edge", "auth", "keyvault", "audit", "worker"])
def test_healthy_when_the_containers_service_answers(fleet: FleetConfig, service: str) -> None:
    port = {
        "PORT": fleet.edge_port,
        "AUTH_PORT": fleet.auth_port,
        "KEYVAULT_PORT": fleet.keyvault_port,
        "AUDIT_PORT": fleet.audit_port,
        "METRICS_PORT": fleet.worker_metrics_ports[0],
    }
    name = {"edge": "PORT", "worker": "METRICS_PORT"}.get(service, f"{service.upper()}_PORT")

    result = healthcheck(**{name: port[name]})

    assert result.returncode == 0, result.stderr


def test_unhealthy_when_nothing_answers() -> None:
    result = healthcheck()

    assert result.returncode == 1
    assert result.stderr.startswith("no service answered: http://127.0.0.1:")
    assert result.stderr.count("/health/live") == 5
