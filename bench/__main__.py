"""`python -m bench` (`make bench`): start a fleet, measure, print and write docs/benchmarks.md.

Settings (environment):
- BENCH_REQUESTS: requests per cell at concurrency >= 16 (default 1000); a fifth of it at
  concurrency 1; streams: a tenth at concurrency 1, half at 16 (paced streams, 5 ms between
  chunks: 10 at concurrency 1, a twentieth at 16).
- BENCH_ROUNDS: direct/gateway alternations per cell (default 2).
- BENCH_MAX_SECONDS: cells not started by then are skipped and listed (default 300).
- BENCH_CLIENT: `raw` (default, `bench.wire`) or `httpx` for the load generator.
- REDIS_URL / DATABASE_URL: servers to use instead of embedded ones.
"""

import asyncio
import os
import secrets
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx
import uvloop

from bench import report
from bench.fleet import MODEL, PROVIDER, Fleet, running_fleet
from bench.load import Samples, Target, chat_body, run
from bench.proc import Memory, busy_seconds, cpu_seconds, peak_memory
from bench.report import Cell, CellResult
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


def targets(fleet: Fleet, token: str, cell: Cell) -> tuple[Target, Target]:
    tokens = STREAM_TOKENS if cell.stream else CHAT_TOKENS
    json = {"Content-Type": "application/json"}
    direct = Target(
        "direct",
        f"{fleet.simulator_url}/{PROVIDER}/chat/completions",
        {**json, "Authorization": "Bearer x"},
        chat_body(cell.latency_ms, tokens, cell.stream, None, cell.chunk_delay_ms),
    )
    gateway = Target(
        "gateway",
        f"{fleet.config.edge_url}/api/v1/chat",
        {**json, "Authorization": f"Bearer {token}"},
        chat_body(cell.latency_ms, tokens, cell.stream, PROVIDER, cell.chunk_delay_ms),
    )
    return direct, gateway


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
    client: httpx.AsyncClient | None, fleet: Fleet, token: str, cell: Cell, rounds: int
) -> CellResult:
    direct_target, gateway_target = targets(fleet, token, cell)
    pids = {**fleet.pids(), "load generator": os.getpid()}
    direct, gateway = Samples(), Samples()
    cpu: dict[str, float] = {}
    for target in (direct_target, gateway_target):  # warm-up: open connections, fill caches
        await run(
            client,
            target,
            concurrency=cell.concurrency,
            requests=cell.concurrency * 2,
            stream=cell.stream,
        )
    per_round = max(cell.requests // rounds, 1)
    for _ in range(rounds):
        direct.extend(
            await run(
                client,
                direct_target,
                concurrency=cell.concurrency,
                requests=per_round,
                stream=cell.stream,
            )
        )
        before = {**cpu_seconds(pids), report.BOX: busy_seconds()}
        gateway.extend(
            await run(
                client,
                gateway_target,
                concurrency=cell.concurrency,
                requests=per_round,
                stream=cell.stream,
            )
        )
        after = {**cpu_seconds(pids), report.BOX: busy_seconds()}
        for name, seconds in after.items():
            cpu[name] = cpu.get(name, 0.0) + seconds - before.get(name, seconds)
    return CellResult(cell, direct, gateway, cpu)


async def measure(
    fleet: Fleet, cells: list[Cell], rounds: int, deadline: float, use_httpx: bool
) -> tuple[list[CellResult], list[Cell], dict[str, Memory]]:
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    results: list[CellResult] = []
    skipped: list[Cell] = []
    async with httpx.AsyncClient(limits=limits, timeout=120.0) as client:
        token = await register(client, fleet)
        for cell in cells:
            if time.monotonic() > deadline:
                skipped.append(cell)
                continue
            started = time.monotonic()
            load_client = client if use_httpx else None
            result = await measure_cell(load_client, fleet, token, cell, rounds)
            results.append(result)
            say(
                f"  {cell.label:<22} gateway {len(result.gateway.latencies)} ok, "
                f"{result.gateway.errors.total()} errors; "
                f"direct {result.direct.errors.total()} errors "
                f"({time.monotonic() - started:.1f} s)"
            )
    return results, skipped, peak_memory(fleet.pids())


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
    with running_fleet(RATE_LIMIT_MAX) as fleet:
        say(f"Fleet up in {time.monotonic() - began:.1f} s; measuring:")
        freeze_startup_heap()  # the load generator's own pauses would blur every cell
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results, skipped, memory = runner.run(
                measure(fleet, cells_by_priority(requests), rounds, began + max_seconds, use_httpx)
            )
        external = [
            name
            for name, pid in (("Redis", fleet.redis_pid), ("PostgreSQL", fleet.postgres_pid))
            if pid is None
        ]
    results.sort(
        key=lambda r: (r.cell.stream, r.cell.latency_ms, r.cell.chunk_delay_ms, r.cell.concurrency)
    )
    chat = report.chat_table([r for r in results if not r.cell.stream])
    stream = report.stream_table([r for r in results if r.cell.stream])
    cpu = report.cpu_table(results)
    mem = report.memory_table(memory)
    errors = report.error_examples(results)
    missing = [f"{cell.label} (BENCH_MAX_SECONDS reached)" for cell in skipped]
    missing += [
        f"CPU and memory of {name} (external: not on this machine's /proc)" for name in external
    ]
    settings = (
        f"BENCH_REQUESTS={requests}, BENCH_ROUNDS={rounds}; one edge process, one `deepseek` "
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
        report.document("make bench", date, settings, chat, stream, cpu, mem, errors, missing)
        + (f"\n{kept}" if kept else "")
    )
    for title, table in (
        ("Non-streaming chat", chat),
        ("Streaming, 100 chunks", stream),
        ("CPU ms per request", cpu),
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
