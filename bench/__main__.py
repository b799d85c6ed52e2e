"""`python -m bench` (`make bench`): start a fleet, measure, print and write docs/benchmarks.md.

Settings (environment):
- BENCH_REQUESTS: requests per cell at concurrency >= 16 (default 1000); a fifth of it at
  concurrency 1; streams: a tenth at concurrency 1, half at 16 (paced streams, 5 ms between
  chunks: 10 at concurrency 1, a twentieth at 16).
- BENCH_ROUNDS: direct/gateway alternations per cell (default 2).
- BENCH_MAX_SECONDS: cells not started by then are skipped and listed (default 300).
- BENCH_CLIENT: `raw` (default, `bench.wire`) or `httpx` for the load generator.
- BENCH_BASELINE: a git revision (e.g. `main`) to measure side by side with this checkout, in
  the same run: a second fleet runs that revision's code, and each round goes direct, then
  through the baseline ("before"), then through this checkout ("after").
- REDIS_URL / DATABASE_URL: servers to use instead of embedded ones (with an external Redis,
  the Redis figures count every client of that server).
"""

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx
import uvloop

from bench import report
from bench.fleet import LOGS, MODEL, PROVIDER, Fleet, checkout, running_fleet
from bench.load import Samples, Target, chat_body, run
from bench.proc import busy_seconds, cpu_seconds, peak_memory
from bench.redis_stats import RedisWork, masters_work
from bench.report import Cell, CellResult
from services.fleet.plan import SIMULATOR_KEY
from shared.heap import freeze_startup_heap

DOC = Path("docs/benchmarks.md")
CHAT_TOKENS = 12
STREAM_TOKENS = 100
PACE_MS = 5  # paced streams: like a model writing 200 tokens per second
RATE_LIMIT_MAX = 100_000_000  # on, but never reached by the benchmark


def say(line: str = "", end: str = "\n") -> None:
    sys.stdout.write(line + end)
    sys.stdout.flush()


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def cells_by_priority(requests: int) -> list[Cell]:
    """Every cell, the ones with latency targets first (the rest go if time runs out)."""
    few, streams = max(requests // 5, 20), max(requests // 10, 10)
    return [
        Cell(stream=False, latency_ms=0, concurrency=1, requests=few),
        Cell(stream=False, latency_ms=50, concurrency=16, requests=requests),
        Cell(stream=False, latency_ms=0, concurrency=64, requests=requests),
        Cell(stream=True, latency_ms=0, concurrency=1, requests=streams),
        Cell(stream=False, latency_ms=50, concurrency=1, requests=few),
        Cell(stream=False, latency_ms=0, concurrency=16, requests=requests),
        Cell(stream=False, latency_ms=50, concurrency=64, requests=requests),
        Cell(stream=True, latency_ms=0, concurrency=16, requests=max(requests // 2, 10)),
        Cell(stream=True, latency_ms=0, concurrency=1, requests=10, chunk_delay_ms=PACE_MS),
        Cell(
            stream=True,
            latency_ms=0,
            concurrency=16,
            requests=max(requests // 20, 16),
            chunk_delay_ms=PACE_MS,
        ),
    ]


@dataclass(frozen=True)
class Gateway:
    """One fleet under test: `code` is "" alone, "before" / "after" side by side."""

    code: str
    fleet: Fleet
    token: str = ""


def fleet_redis_work(fleet: Fleet) -> RedisWork:
    """What the fleet's Redis did so far, summed over the masters of a cluster."""
    return sum(masters_work(fleet.config.redis_url, fleet.cluster), RedisWork())


def direct_target(fleet: Fleet, cell: Cell) -> Target:
    tokens = STREAM_TOKENS if cell.stream else CHAT_TOKENS
    return Target(
        "direct",
        f"{fleet.simulator_url}/{PROVIDER}/chat/completions",
        {"Content-Type": "application/json", "Authorization": f"Bearer {SIMULATOR_KEY}"},
        chat_body(cell.latency_ms, tokens, cell.stream, None, cell.chunk_delay_ms),
    )


def gateway_target(gateway: Gateway, cell: Cell) -> Target:
    tokens = STREAM_TOKENS if cell.stream else CHAT_TOKENS
    return Target(
        "gateway",
        f"{gateway.fleet.config.edge_url}/api/v1/chat",
        {"Content-Type": "application/json", "Authorization": f"Bearer {gateway.token}"},
        chat_body(cell.latency_ms, tokens, cell.stream, PROVIDER, cell.chunk_delay_ms),
    )


async def register(client: httpx.AsyncClient, fleet: Fleet) -> str:
    response = await client.post(
        f"{fleet.config.edge_url}/api/v1/auth/register",
        json={
            "email": f"bench-{secrets.token_hex(4)}@example.com",
            "password": "bench-password-123",
            "name": "Bench",
        },
    )
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


async def measure_cell(
    client: httpx.AsyncClient | None, gateways: list[Gateway], cell: Cell, rounds: int
) -> list[CellResult]:
    """Rounds of direct, then each gateway in turn; a result per gateway, with the same
    direct samples."""
    direct = Samples()
    direct_to = direct_target(gateways[-1].fleet, cell)
    targets = [gateway_target(gateway, cell) for gateway in gateways]
    samples = [Samples() for _ in gateways]
    cpu: list[dict[str, float]] = [{} for _ in gateways]
    redis = [RedisWork() for _ in gateways]

    async def load(target: Target, requests: int) -> Samples:
        return await run(
            client, target, concurrency=cell.concurrency, requests=requests, stream=cell.stream
        )

    for target in (direct_to, *targets):  # warm-up: open connections, fill caches
        await load(target, cell.concurrency * 2)
    per_round = max(cell.requests // rounds, 1)
    for _ in range(rounds):
        direct.extend(await load(direct_to, per_round))
        for index, gateway in enumerate(gateways):
            pids = {**gateway.fleet.pids(), "load generator": os.getpid()}
            before = {**cpu_seconds(pids), report.BOX: busy_seconds()}
            redis_before = fleet_redis_work(gateway.fleet)
            samples[index].extend(await load(targets[index], per_round))
            redis[index] += fleet_redis_work(gateway.fleet) - redis_before
            after = {**cpu_seconds(pids), report.BOX: busy_seconds()}
            for name, seconds in after.items():
                cpu[index][name] = cpu[index].get(name, 0.0) + seconds - before.get(name, seconds)
    return [
        CellResult(cell, direct, samples[i], cpu[i], redis[i], gateway.code)
        for i, gateway in enumerate(gateways)
    ]


async def measure(
    gateways: list[Gateway], cells: list[Cell], rounds: int, deadline: float, use_httpx: bool
) -> tuple[list[CellResult], list[Cell]]:
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    results: list[CellResult] = []
    skipped: list[Cell] = []
    async with httpx.AsyncClient(limits=limits, timeout=120.0) as client:
        gateways = [Gateway(g.code, g.fleet, await register(client, g.fleet)) for g in gateways]
        for cell in cells:
            if time.monotonic() > deadline:
                skipped.append(cell)
                continue
            started = time.monotonic()
            load_client = client if use_httpx else None
            measured = await measure_cell(load_client, gateways, cell, rounds)
            results += measured
            for result in measured:
                say(
                    f"  {cell.label:<22} gateway {result.code or ''} "
                    f"{len(result.gateway.latencies)} ok, "
                    f"{result.gateway.errors.total()} errors; "
                    f"direct {result.direct.errors.total()} errors "
                    f"({time.monotonic() - started:.1f} s)"
                )
    return results, skipped


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every `finally` that stops a process


def main() -> int:
    # Also when started with SIGINT ignored (a background job): Ctrl-C must stop the fleet.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    requests = _env_int("BENCH_REQUESTS", 1000)
    rounds = _env_int("BENCH_ROUNDS", 2)
    max_seconds = _env_int("BENCH_MAX_SECONDS", 300)
    use_httpx = os.environ.get("BENCH_CLIENT", "raw") == "httpx"
    began = time.monotonic()
    # Other work on the box skews every figure: say how busy it was before the fleet started.
    load = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    client = "httpx" if use_httpx else "raw"
    say(f"Starting the fleet (BENCH_REQUESTS={requests}, BENCH_ROUNDS={rounds}, ", end="")
    say(f"BENCH_CLIENT={client})...")
    baseline = os.environ.get("BENCH_BASELINE", "")
    with contextlib.ExitStack() as stack:
        gateways = []
        if baseline:
            code = stack.enter_context(checkout(baseline))
            logs = LOGS / "baseline"
            fleet = stack.enter_context(running_fleet(RATE_LIMIT_MAX, logs=logs, code=code))
            gateways.append(Gateway("before", fleet))
        fleet = stack.enter_context(running_fleet(RATE_LIMIT_MAX))
        gateways.append(Gateway("after" if baseline else "", fleet))
        say(f"Fleet up in {time.monotonic() - began:.1f} s; measuring:")
        freeze_startup_heap()  # the load generator's own pauses would blur every cell
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            cells = cells_by_priority(requests)
            results, skipped = runner.run(
                measure(gateways, cells, rounds, began + max_seconds, use_httpx)
            )
        memory = {
            f"{name} ({g.code})" if g.code else name: m
            for g in gateways
            for name, m in peak_memory(g.fleet.pids()).items()
        }
        external = [
            name
            for name, pid in (("Redis", fleet.redis_pid), ("PostgreSQL", fleet.postgres_pid))
            if pid is None
        ]
    results.sort(
        key=lambda r: (
            r.cell.stream,
            r.cell.latency_ms,
            r.cell.chunk_delay_ms,
            r.cell.concurrency,
            r.code != "after",
        )
    )
    chat = report.chat_table([r for r in results if not r.cell.stream])
    stream = report.stream_table([r for r in results if r.cell.stream])
    cpu = report.cpu_table(results)
    redis = report.redis_table(results)
    mem = report.memory_table(memory)
    errors = report.error_examples(results)
    missing = [f"{cell.label} (BENCH_MAX_SECONDS reached)" for cell in skipped]
    missing += [
        f"CPU and memory of {name} (external: not on this machine's /proc)" for name in external
    ]
    settings = (
        (f"code before: `{baseline}`, after: this checkout; " if baseline else "")
        + f"BENCH_REQUESTS={requests}, BENCH_ROUNDS={rounds}; one edge process, one `deepseek` "
        f"worker process; auth, rate limiting (RATE_LIMIT_MAX={RATE_LIMIT_MAX}) and audit on; "
        f"model `{MODEL}`; load generator: "
        + (
            "httpx.AsyncClient"
            if use_httpx
            else "bench.wire (one raw HTTP/1.1 connection per caller)"
        )
        + f", keep-alive, on uvloop; load average before the run (1/5/15 min): {load}"
    )
    DOC.parent.mkdir(exist_ok=True)
    kept = report.load_test_section(DOC.read_text() if DOC.exists() else "")
    DOC.write_text(
        report.document(
            "make bench", date, settings, chat, stream, cpu, redis, mem, errors, missing
        )
        + (f"\n{kept}" if kept else "")
    )
    for title, table in (
        ("Non-streaming chat", chat),
        ("Streaming, 100 chunks", stream),
        ("CPU ms per request", cpu),
        ("Redis per request", redis),
        ("Peak memory", mem),
    ):
        say(f"\n## {title}\n\n{table}")
    if errors:
        say(f"\n## Errors seen\n\n{errors}")
    say(f"\nWrote {DOC} in {time.monotonic() - began:.0f} s.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: every process this run started has been stopped\n")
        sys.exit(130)
