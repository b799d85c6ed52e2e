"""`python -m services.auth` as a real process: migrate, serve, answer, stop by its PID."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.tokens import TokenVerifier

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_env(database_url: str, data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWT_")}
    env.update(
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        HOST="127.0.0.1",
        AUTH_PORT=str(port),
        NODE_ENV="test",
        BCRYPT_ROUNDS="4",
        LOG_LEVEL="info",
    )
    return env


@pytest.fixture
def auth_process(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log_path = tmp_path / "auth.log"
    env = service_env(database_url, tmp_path / "data", port)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.auth"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"auth exited with {proc.returncode}: {log_path.read_text()}")
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"auth did not start: {log_path.read_text()}")
            time.sleep(0.1)
        yield base, log_path
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, 15)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, 9)
                proc.wait(timeout=10)


def test_migrate_command(database_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.auth", "migrate"],
        cwd=ROOT,
        env=service_env(database_url, tmp_path, free_port()),
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
