"""A worker pool's probes, on a real worker process and a Redis server of the test's own:
ready only while connected to Redis and consuming its stream, live throughout. The worker
gets its secrets as mounted files (`*_FILE`), as on Kubernetes."""

import secrets
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from services.fleet.infra import RedisServer, free_port
from services.fleet.processes import Service
from shared.redis_keys import RedisKeys


def until(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def status(url: str) -> int:
    """The HTTP status, 0 while nothing answers."""
    try:
        return httpx.get(url, timeout=2.0).status_code
    except httpx.HTTPError:
        return 0


def mounted(folder: Path, values: dict[str, str]) -> dict[str, str]:
    """Each value written to its own file, as a mounted Secret; the `*_FILE` variables."""
    folder.mkdir(parents=True)
    env = {}
    for name, value in values.items():
        (folder / name).write_text(value + "\n")
        env[f"{name}_FILE"] = str(folder / name)
        env[name] = ""  # not inherited from the suite's environment
    return env


def test_a_worker_is_ready_while_it_consumes_and_live_throughout(run_dir: Path) -> None:
    folder = run_dir / f"probes-{secrets.token_hex(3)}"
    redis = RedisServer(folder / "redis")
    port = free_port()
    prefix = f"gw-probe-{secrets.token_hex(3)}"
    env = {
        "NODE_ENV": "test",
        "HOST": "127.0.0.1",
        "METRICS_PORT": str(port),
        "REDIS_PREFIX": prefix,
        "DATA_DIR": str(folder / "data"),
        **mounted(
            folder / "secrets",
            {"REDIS_URL": redis.url, "KEYVAULT_SERVICE_TOKEN": secrets.token_urlsafe(32)},
        ),
    }
    worker = Service(
        "worker-deepseek",
        ["-m", "services.workers", "--provider", "deepseek"],
        env,
        log_path=folder / "worker.log",
    )
    base = f"http://127.0.0.1:{port}"
    redis.start()
    try:
        worker.start()
        until(lambda: status(f"{base}/health/ready") == 200)
        assert status(f"{base}/health/live") == 200
        assert "gateway_jobs_total" in httpx.get(f"{base}/metrics").text

        redis.stop()
        until(lambda: status(f"{base}/health/ready") == 503)
        error = httpx.get(f"{base}/health/ready").json()["error"]
        assert error["type"] == "internal_error"
        assert error["message"].startswith(f"not consuming {RedisKeys(prefix).jobs('deepseek')}")
        assert error["trace_id"]
        assert status(f"{base}/health/live") == 200

        redis.start()
        until(lambda: status(f"{base}/health/ready") == 200)
        assert worker.process is not None and worker.process.poll() is None
    finally:
        worker.stop()
        redis.stop()
