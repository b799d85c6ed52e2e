"""`python -m bench.loadtest` (`make loadtest`, `make soak`): Locust load on the queue, reported.

Starts a fleet with the provider simulator upstream (as `make bench` does, `bench.fleet`) or
uses a running gateway, runs the users of `bench/locustfile.py` in a headless Locust process,
samples the edge's queue depth per provider (`gateway_queue_depth` on its /metrics) meanwhile,
then prints throughput, latency percentiles, errors by status and type and the queue depth.
Exits 1 when the error rate is over LOADTEST_MAX_ERROR_RATE. In soak mode it also follows the
resident memory (VmRSS) of the edge and of each worker pool of the fleet it started, from the
end of the warm-up to the end of the run, and exits 1 when one grew by more than
LOADTEST_MAX_RSS_GROWTH percent.

Settings (environment):
- LOADTEST_USERS: simulated users, each sending one request after another (default 20).
- LOADTEST_SPAWN_RATE: users started per second (default: all of them within 5 s).
- LOADTEST_DURATION: run time, e.g. 60s, 10m (default 60s; 10m in soak mode).
- LOADTEST_SOAK: 1 for soak mode (`make soak`).
- LOADTEST_WARMUP: soak mode: the memory baseline is taken after this (default: a tenth of
  the duration).
- LOADTEST_URL: base URL of a running gateway's edge; unset: start a fleet here.
- LOADTEST_TOKEN: bearer (JWT or gateway API key) for LOADTEST_URL; or LOADTEST_EMAIL and
  LOADTEST_PASSWORD to log in; none of them: a new user is registered.
- LOADTEST_MIX: providers and weights, e.g. `deepseek:3,anthropic:1` (default `deepseek`).
- LOADTEST_STREAM_SHARE: share of streamed requests, 0 to 1 (default 0.2).
- LOADTEST_UPSTREAM_MS, LOADTEST_ANSWER_TOKENS: the simulator's latency and answer length
  (defaults 50 and 20; a real provider just sees them as text).
- LOADTEST_MAX_ERROR_RATE: failed share of requests above which the run fails (default 0.01).
- LOADTEST_MAX_RSS_GROWTH: soak mode: percent of memory growth flagged (default 10).
- LOADTEST_OUT: folder for Locust's output and figures (default .data/loadtest).
- REDIS_URL / DATABASE_URL: servers the started fleet uses instead of embedded ones.
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.fleet import running_fleet
from bench.mix import format_mix, parse_mix
from bench.proc import rss_kib
from shared.settings import parse_duration

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LOGS = Path(".data/loadtest-logs")  # the started fleet's service logs of the last run
SUMMARY = "summary.json"  # written by the Locust process (bench/locustfile.py)
LOCUST_LOG = "locust.log"  # Locust's output, its own summary tables at the end
RATE_LIMIT_MAX = 100_000_000  # on, but never reached by the load
SAMPLE_SECONDS = 1.0
PROGRESS_SECONDS = 10.0
T = TypeVar("T")


def _seconds(text: str) -> int:
    return int(parse_duration(text))


@dataclass(frozen=True)
class Config:
    users: int
    spawn_rate: float
    duration: int  # seconds
    soak: bool
    warmup: int  # seconds
    url: str | None
    token: str | None
    email: str | None
    password: str | None
    mix: dict[str, int]
    stream_share: float
    upstream_ms: int
    answer_tokens: int
    max_error_rate: float
    max_rss_growth: float  # percent
    out: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Config":
        def read(name: str, default: str, parse: Callable[[str], T]) -> T:
            text = env.get(name) or default
            try:
                return parse(text)
            except ValueError as error:
                raise ValueError(f"{name}={text!r}: {error}") from None

        soak = env.get("LOADTEST_SOAK", "") not in ("", "0")
        users = read("LOADTEST_USERS", "20", int)
        duration = read("LOADTEST_DURATION", "10m" if soak else "60s", _seconds)
        stream_share = read("LOADTEST_STREAM_SHARE", "0.2", float)
        warmup = read("LOADTEST_WARMUP", str(duration // 10), _seconds)
        if users < 1 or duration < 1 or not 0 <= stream_share <= 1 or warmup >= duration:
            raise ValueError(
                "LOADTEST_USERS and LOADTEST_DURATION must be positive, LOADTEST_STREAM_SHARE "
                "between 0 and 1, LOADTEST_WARMUP shorter than LOADTEST_DURATION"
            )
        return cls(
            users=users,
            spawn_rate=read("LOADTEST_SPAWN_RATE", str(max(users / 5, 1)), float),
            duration=duration,
            soak=soak,
            warmup=warmup,
            url=env.get("LOADTEST_URL") or None,
            token=env.get("LOADTEST_TOKEN") or None,
            email=env.get("LOADTEST_EMAIL") or None,
            password=env.get("LOADTEST_PASSWORD") or None,
            mix=read("LOADTEST_MIX", "deepseek", parse_mix),
            stream_share=stream_share,
            upstream_ms=read("LOADTEST_UPSTREAM_MS", "50", int),
            answer_tokens=read("LOADTEST_ANSWER_TOKENS", "20", int),
            max_error_rate=read("LOADTEST_MAX_ERROR_RATE", "0.01", float),
            max_rss_growth=read("LOADTEST_MAX_RSS_GROWTH", "10", float),
            out=Path(env.get("LOADTEST_OUT") or ".data/loadtest"),
        )

    def describe(self, target: str) -> str:
        return (
            f"{self.users} users (spawn {self.spawn_rate:g}/s), {self.duration} s, "
            f"mix {format_mix(self.mix)}, {self.stream_share:.0%} streamed, upstream "
            f"{self.upstream_ms} ms / {self.answer_tokens} tokens; target: {target}"
        )


@dataclass(frozen=True)
class Target:
    url: str
    token: str
    pids: dict[str, int]  # processes whose memory a soak follows: none for a running gateway


@dataclass
class Observed:
    """What the sampler saw while the load ran."""

    depth_max: dict[str, float] = field(default_factory=dict)
    depth_last: dict[str, float] = field(default_factory=dict)
    metrics_problem: str | None = None  # why the queue depth could not be read, if so
    rss_warm: dict[str, int] = field(default_factory=dict)  # KiB, at the end of the warm-up
    rss_last: dict[str, int] = field(default_factory=dict)  # KiB, at the last sample

    def sample_queues(self, client: httpx.Client, url: str) -> None:
        try:
            response = client.get(f"{url}/metrics")
            response.raise_for_status()
        except httpx.HTTPError as error:
            self.metrics_problem = f"{url}/metrics: {type(error).__name__} {error}"
            return
        self.metrics_problem = None
        for family in text_string_to_metric_families(response.text):
            if family.name != "gateway_queue_depth":
                continue
            for sample in family.samples:
                provider = sample.labels["provider"]
                self.depth_last[provider] = sample.value
                self.depth_max[provider] = max(self.depth_max.get(provider, 0.0), sample.value)

    def sample_memory(self, pids: dict[str, int], warm: bool) -> None:
        self.rss_last = {name: rss_kib(pid) for name, pid in pids.items()}
        if warm and not self.rss_warm:
            self.rss_warm = dict(self.rss_last)


@dataclass(frozen=True)
class Row:
    name: str
    requests: int
    failures: int
    rps: float
    p50: int | None  # ms, in Locust's buckets (two significant digits); None: no requests
    p90: int | None
    p99: int | None


@dataclass(frozen=True)
class Results:
    rows: list[Row]  # one per request name, then the total
    errors: list[tuple[str, str, str, int]]  # (request name, status, type, count)

    @property
    def total(self) -> Row:
        return self.rows[-1]


def say(line: str = "", end: str = "\n") -> None:
    sys.stdout.write(line + end)
    sys.stdout.flush()


def credentials(client: httpx.Client, config: Config, url: str) -> str:
    """The bearer the users send: given, or from logging in, or from registering a user."""
    if config.token:
        return config.token
    if config.email and config.password:
        body = {"email": config.email, "password": config.password}
        response = client.post(f"{url}/api/v1/auth/login", json=body)
    else:
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
            yield Target(url, credentials(client, config, url), pids)


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
    (config.out / SUMMARY).unlink(missing_ok=True)
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


def read_results(out: Path) -> Results:
    summary = json.loads((out / SUMMARY).read_text())
    rows = [
        Row(r["name"], r["requests"], r["failures"], r["rps"], r["p50"], r["p90"], r["p99"])
        for r in summary["requests"]
    ]
    errors = []
    for name, message, count in summary["errors"]:
        status, _, kind = message.partition(" ")
        errors.append((name, status, kind, count))
    errors.sort(key=lambda error: -error[3])
    return Results([*rows[:-1], replace(rows[-1], name="total")], errors)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table padded to line up in a terminal."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def requests_table(results: Results) -> str:
    header = ["request", "requests", "failures", "req/s", "p50 ms", "p90 ms", "p99 ms"]
    return table(
        header,
        [
            [r.name, str(r.requests), str(r.failures), f"{r.rps:.1f}"]
            + ["–" if ms is None else str(ms) for ms in (r.p50, r.p90, r.p99)]
            for r in results.rows
        ],
    )


def errors_table(results: Results) -> str:
    if not results.errors:
        return "none"
    rows = [[name, status, kind, str(n)] for name, status, kind, n in results.errors]
    return table(["request", "status", "type", "count"], rows)


def queue_table(observed: Observed, mix: dict[str, int]) -> str:
    if observed.metrics_problem and not observed.depth_max:
        return f"not available ({observed.metrics_problem})"
    providers = [p for p in observed.depth_max if p in mix or observed.depth_max[p]]
    rows = [[p, f"{observed.depth_max[p]:.0f}", f"{observed.depth_last[p]:.0f}"] for p in providers]
    return table(["provider", "max", "at end"], rows)


def memory_table(observed: Observed, config: Config) -> tuple[str, list[str]]:
    """The table and the processes whose memory grew beyond the limit."""
    if not observed.rss_warm:
        return "not measured (a running gateway's processes are not followed)", []
    rows, grown = [], []
    for name, warm in observed.rss_warm.items():
        last = observed.rss_last[name]
        change = 100 * (last - warm) / warm if warm else 0.0
        flag = "ok"
        if change > config.max_rss_growth:
            flag = f"GROWTH > {config.max_rss_growth:g} %"
            grown.append(name)
        rows.append([name, f"{warm / 1024:.1f}", f"{last / 1024:.1f}", f"{change:+.1f} %", flag])
    header = ["process", f"RSS MiB after {config.warmup} s", "RSS MiB at end", "change", "flag"]
    return table(header, rows), grown


def report(config: Config, results: Results, observed: Observed) -> int:
    """Print the tables; the exit status."""
    total = results.total
    error_rate = total.failures / total.requests if total.requests else 1.0
    say(f"\n## Requests\n\n{requests_table(results)}")
    successful = total.rps * (1 - error_rate) if total.requests else 0.0
    say(f"\nThroughput: {total.rps:.1f} req/s, {successful:.1f} of them successful, ", end="")
    say(f"over {config.duration} s.")
    say(f"\n## Errors by status and type\n\n{errors_table(results)}")
    say(f"\n## Queue depth per provider (jobs on the stream, every {SAMPLE_SECONDS:g} s)\n")
    say(queue_table(observed, config.mix))
    failed = []
    if total.requests == 0:
        failed.append("no request completed")
    elif error_rate > config.max_error_rate:
        failed.append(f"error rate {error_rate:.2%} > {config.max_error_rate:.2%}")
    if config.soak:
        memory, grown = memory_table(observed, config)
        say(f"\n## Memory (VmRSS)\n\n{memory}")
        if grown:
            failed.append(f"memory grew over {config.max_rss_growth:g} %: {', '.join(grown)}")
    say(f"\nError rate {error_rate:.2%} (limit {config.max_error_rate:.2%}). ", end="")
    say("FAILED: " + "; ".join(failed) if failed else "OK.")
    return 1 if failed else 0


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every `finally` that stops a process


def main() -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        config = Config.from_env(os.environ)
    except ValueError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    say(f"{'Soak' if config.soak else 'Load'} test: ", end="")
    say(config.describe(config.url or "a fleet started here, simulator upstream"))
    with target(config) as running:
        say(f"Gateway at {running.url}; Locust's output in {config.out / LOCUST_LOG}")
        observed = run_load(config, running)
    return report(config, read_results(config.out), observed)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: every process this run started has been stopped\n")
        sys.exit(130)
