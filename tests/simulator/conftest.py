"""A real simulator process per test session (per xdist worker), on a free port."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 15.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"simulator exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"simulator did not become healthy:\n{log.read_text()}")


@pytest.fixture(scope="session")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    # The keys these tests call with, as if the providers had issued them.
    keys = "sk-test,sk-ant-test,sk-ant,sk-ant-short,sk-fail-429,sk-ant-fail-429"
    args = ["--port", str(port), "--tokens", "12", "--keepalive-ms", "50", "--api-keys", keys]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.simulator", *args],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def trace_id(request: pytest.FixtureRequest) -> str:
    return f"trace-{request.node.name}-{time.monotonic_ns()}"
