"""`python -m services.auth` as a real process: migrate, serve, answer, stop by its PID."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.fleet.infra import free_port
from services.fleet.processes import Service
from shared.tokens import TokenVerifier

ROOT = Path(__file__).resolve().parents[2]


def service_env(
    database_url: str, data_dir: Path, port: int, redis_url: str = ""
) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"gw-auth-proc-{os.getpid()}",
        "DATA_DIR": str(data_dir),
        "HOST": "127.0.0.1",
        "AUTH_PORT": str(port),
        "NODE_ENV": "test",
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "info",
    }


@pytest.fixture
def auth_process(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    service = Service(
        "auth",
        ["-m", "services.auth"],
        service_env(database_url, tmp_path / "data", port, redis_url),
        health_url=f"http://127.0.0.1:{port}/health/live",
        log_path=tmp_path / "auth.log",
    )
    try:
        service.start()
        service.wait_healthy(30)
        yield f"http://127.0.0.1:{port}", tmp_path / "auth.log"
    finally:
        service.stop()


def test_migrate_command(database_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.auth", "migrate"],
        cwd=ROOT,
        env={**os.environ, **service_env(database_url, tmp_path, free_port())},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b'"service":"auth"' in result.stdout


def test_real_process(auth_process: tuple[str, Path]) -> None:
    base, log_path = auth_process
    email = f"proc_{os.getpid()}_{time.time_ns()}@example.com"
    password = "securePassword123"
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/health/ready").json() == {"status": "ok"}
        created = client.post(
            "/api/v1/auth/register", json={"email": email, "password": password, "name": "P"}
        )
        assert created.status_code == 201, created.text
        logged_in = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert logged_in.status_code == 200
        token = logged_in.json()["token"]
        verifier = TokenVerifier.from_jwks(
            client.get("/.well-known/jwks.json").json(), issuer="ai-gateway", audience="ai-gateway"
        )
        assert verifier.verify(token).sub == created.json()["user"]["id"]
    logs = log_path.read_text()
    assert '"service":"auth"' in logs
    assert password not in logs and token not in logs
