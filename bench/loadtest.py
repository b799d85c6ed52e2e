"""`python -m bench.loadtest` (`make loadtest`, `make soak`): Locust load on the queue, reported.

Starts a fleet with the provider simulator upstream (as `make bench` does, `bench.fleet`) or
uses a running gateway, runs the users of `bench/locustfile.py` in a headless Locust process,
samples the edge's queue depth per provider (`gateway_queue_depth` on its /metrics) meanwhile,
then prints throughput, latency percentiles, errors by status and type and the queue depth,
and writes them over time as charts (`bench.loadtest_charts`) beside Locust's HTML report in
LOADTEST_OUT. Exits 1 when the error rate is over LOADTEST_MAX_ERROR_RATE. In soak mode it
also follows the resident memory (VmRSS) of the edge and of each worker pool of the fleet it
started, from the end of the warm-up to the end of the run, and exits 1 when one grew by more
than LOADTEST_MAX_RSS_GROWTH percent. Its settings: `bench/loadtest_config.py`.
"""

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from bench.fleet import running_fleet
from bench.loadtest_charts import CHARTS, LOCUST_CSV, LOCUST_HTML, write_charts
from bench.loadtest_config import Config
from bench.loadtest_results import (
    SAMPLE_SECONDS,
    SUMMARY,
    Observed,
    read_results,
    report,
    say,
)
from bench.mix import format_mix
from bench.redis_stats import masters_work, spread

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LOGS = Path(".data/loadtest-logs")  # the started fleet's service logs of the last run
LOCUST_LOG = "locust.log"  # Locust's output, its own summary tables at the end
RATE_LIMIT_MAX = 100_000_000  # on, but never reached by the load
PROGRESS_SECONDS = 10.0


@dataclass(frozen=True)
class Target:
    url: str
    token: str
    pids: dict[str, int]  # processes whose memory a soak follows: none for a running gateway
    redis: tuple[str, bool] | None = None  # the started fleet's Redis URL, and whether a cluster


def credentials(client: httpx.Client, config: Config, url: str) -> str:
    """The bearers the users send, comma-separated: given, or from logging in, or from
    registering `LOADTEST_ACCOUNTS` users."""
    if config.token:
        return config.token
    if config.email and config.password:
        body = {"email": config.email, "password": config.password}
        response = client.post(f"{url}/api/v1/auth/login", json=body)
    else:
        return ",".join(register(client, url) for _ in range(config.accounts))
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


def register(client: httpx.Client, url: str) -> str:
    email = f"loadtest-{secrets.token_hex(4)}@example.com"
    body = {"email": email, "password": "loadtest-password-123", "name": "Load Test"}
    response = client.post(f"{url}/api/v1/auth/register", json=body)
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


@contextlib.contextmanager
def target(config: Config) -> Iterator[Target]:
    with httpx.Client(timeout=30.0) as client:
        if config.url:
            url = config.url.rstrip("/")
            yield Target(url, credentials(client, config, url), {})
            return
        with running_fleet(RATE_LIMIT_MAX, tuple(config.mix), LOGS) as fleet:
            url = fleet.config.edge_url
            pids = {
                name: pid
                for name, pid in fleet.pids().items()
                if name == "edge" or name.startswith("worker-")
            }
            redis = (fleet.config.redis_url, fleet.cluster)
            yield Target(url, credentials(client, config, url), pids, redis)


def locust_command(config: Config, target: Target) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--host",
        target.url,
        "--users",
        str(config.users),
        "--spawn-rate",
        f"{config.spawn_rate:g}",
        "--run-time",
        f"{config.duration}s",
        # Requests in flight at the end finish rather than being cut off.
        "--stop-timeout",
        "30",
        # Per-second history of every request name, for the charts, and Locust's HTML report.
        "--csv",
        str(config.out / LOCUST_CSV),
        "--csv-full-history",
        "--html",
        str(config.out / LOCUST_HTML),
    ]


def locust_env(config: Config, target: Target) -> dict[str, str]:
    return {
        **os.environ,
        "LOADTEST_TOKEN": target.token,
        "LOADTEST_MIX": format_mix(config.mix),
        "LOADTEST_STREAM_SHARE": str(config.stream_share),
        "LOADTEST_UPSTREAM_MS": str(config.upstream_ms),
        "LOADTEST_ANSWER_TOKENS": str(config.answer_tokens),
        "LOADTEST_SUMMARY": str(config.out / SUMMARY),
    }


def _progress(elapsed: float, observed: Observed) -> str:
    depth = ", ".join(f"{p} {v:.0f}" for p, v in sorted(observed.depth_last.items()) if v)
    line = f"  {elapsed:5.0f} s  queue depth: {depth or '0'}"
    if observed.rss_last:
        rss = ", ".join(f"{name} {kib / 1024:.0f}" for name, kib in observed.rss_last.items())
        line += f"; RSS MiB: {rss}"
    return line


def run_load(config: Config, target: Target) -> Observed:
    """Locust in its own process (gevent stays out of this one), sampled until it ends."""
    config.out.mkdir(parents=True, exist_ok=True)
    for previous in (SUMMARY, LOCUST_HTML, *CHARTS):
        (config.out / previous).unlink(missing_ok=True)
    observed = Observed()
    started = time.monotonic()
    next_progress = PROGRESS_SECONDS
    log = (config.out / LOCUST_LOG).open("wb")
    process = subprocess.Popen(
        locust_command(config, target),
        env=locust_env(config, target),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(timeout=5.0) as client:
            while process.poll() is None:
                elapsed = time.monotonic() - started
                observed.sample_queues(client, target.url)
                if config.soak:
                    observed.sample_memory(target.pids, warm=elapsed >= config.warmup)
                if elapsed >= next_progress:
                    say(_progress(elapsed, observed))
                    next_progress += PROGRESS_SECONDS
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(SAMPLE_SECONDS)
    finally:
        if process.poll() is None:
            process.terminate()  # Locust writes its summary on the way out
            process.wait()
        log.close()
    # 1: some requests failed, which the report counts; anything else: Locust itself failed.
    if process.returncode not in (0, 1):
        log_path = config.out / LOCUST_LOG
        raise RuntimeError(f"locust exited with {process.returncode}: see {log_path}")
    return observed


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every `finally` that stops a process


def main() -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        config = Config.from_env()
    except ValueError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    say(f"{'Soak' if config.soak else 'Load'} test: ", end="")
    say(config.describe(config.url or "a fleet started here, simulator upstream"))
    with target(config) as running:
        say(f"Gateway at {running.url}; Locust's output in {config.out / LOCUST_LOG}")
        before = masters_work(*running.redis) if running.redis else []
        observed = run_load(config, running)
        after = masters_work(*running.redis) if running.redis else []
    results = read_results(config.out)
    status = report(config, results, observed)
    if before:
        work = [a - b for a, b in zip(after, before, strict=True)]
        say(f"Redis: {spread(work, results.total.requests)}")
    charts = ", ".join(path.name for path in write_charts(config, observed))
    say(f"Charts in {config.out}: {charts}; Locust's report: {config.out / LOCUST_HTML}")
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: every process this run started has been stopped\n")
        sys.exit(130)
