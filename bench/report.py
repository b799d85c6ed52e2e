"""Percentiles, the Markdown tables and `docs/benchmarks.md`."""

import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from bench.load import Samples
from bench.proc import Memory
from bench.redis_stats import RedisWork

# Summed for the "CPU per request" target: every gateway process plus Redis.
GATEWAY = ("edge", "worker-deepseek", "audit", "auth", "keyvault", "redis")
OTHERS = ("postgres", "simulator", "load generator")
BOX = "whole machine"  # every process on the box, ours or not (/proc/stat)


@dataclass(frozen=True)
class Cell:
    stream: bool
    latency_ms: int
    concurrency: int
    requests: int
    chunk_delay_ms: int = 0  # streams: the upstream's pause between chunks (0: a burst)

    @property
    def label(self) -> str:
        kind = "stream" if self.stream else "chat"
        paced = f" paced {self.chunk_delay_ms} ms" if self.chunk_delay_ms else ""
        return f"{kind} {self.latency_ms} ms{paced} c={self.concurrency}"


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    direct: Samples
    gateway: Samples
    gateway_cpu: dict[str, float]  # seconds of CPU per process over the gateway rounds
    redis: RedisWork  # what the fleet's Redis did over the gateway rounds
    code: str = ""  # "before" / "after" when two revisions run side by side

    @property
    def gateway_name(self) -> str:
        return f"gateway {self.code}" if self.code else "gateway"

    @property
    def first_of_cell(self) -> bool:
        """Whether this result prints its cell's direct row (side by side, the first does)."""
        return self.code != "after"

    def redis_per_request(self) -> tuple[float, float]:
        """Redis commands (the benchmark's own INFO left out) and Redis CPU ms per request."""
        done = max(self.gateway.requests, 1)
        calls = sum(n for name, n in self.redis.calls.items() if name != "info")
        return calls / done, 1000 * self.redis.cpu_seconds / done

    def cpu_ms_per_request(self, names: tuple[str, ...] = GATEWAY) -> float:
        done = max(self.gateway.requests, 1)
        return 1000 * sum(self.gateway_cpu.get(name, 0.0) for name in names) / done


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return 1000 * ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def _rps(samples: Samples) -> float:
    return len(samples.latencies) / samples.elapsed if samples.elapsed else math.nan


def _f(value: float, digits: int = 1) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def _plus(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:+.1f}"


def _errors(samples: Samples) -> str:
    if not samples.errors:
        return "0"
    kinds = ", ".join(f"{kind}×{n}" for kind, n in samples.errors.most_common())
    return f"{samples.errors.total()} ({kinds})"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table padded to line up in a terminal."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def chat_table(results: list[CellResult]) -> str:
    header = ["upstream", "c", "target", "req/s", "p50 ms", "p90 ms", "p99 ms"]
    header += ["added p50", "added p99", "CPU ms/req", "errors"]
    rows = []
    for result in results:
        cell, direct, gateway = result.cell, result.direct, result.gateway
        for name, samples in _targets(result):
            row = [f"{cell.latency_ms} ms", str(cell.concurrency), name, _f(_rps(samples), 0)]
            row += [_f(percentile(samples.latencies, p)) for p in (0.5, 0.9, 0.99)]
            if name != "direct":
                row += [
                    _plus(percentile(gateway.latencies, 0.5) - percentile(direct.latencies, 0.5)),
                    _plus(percentile(gateway.latencies, 0.99) - percentile(direct.latencies, 0.99)),
                    _f(result.cpu_ms_per_request(), 2),
                ]
            else:
                row += ["", "", ""]
            rows.append([*row, _errors(samples)])
    return markdown_table(header, rows)


def _targets(result: CellResult) -> list[tuple[str, Samples]]:
    direct = [("direct", result.direct)] if result.first_of_cell else []
    return [*direct, (result.gateway_name, result.gateway)]


def _span(values: list[int]) -> str:
    return f"{min(values)}–{max(values)}" if values else "–"


def stream_table(results: list[CellResult]) -> str:
    header = ["chunks", "c", "target", "streams/s", "TTFT p50", "TTFT p99", "full p50"]
    header += ["full p99"]
    header += ["added TTFT p50", "added full p50", "added full p99", "CPU ms/stream"]
    header += ["CPU ms/upstream chunk", "SSE events/stream", "text chars/stream", "errors"]
    rows = []
    for result in results:
        direct, gateway = result.direct, result.gateway
        for name, samples in _targets(result):
            pace = result.cell.chunk_delay_ms
            row = [f"every {pace} ms" if pace else "burst", str(result.cell.concurrency), name]
            row += [_f(_rps(samples), 0)]
            row += [_f(percentile(samples.first_tokens, p)) for p in (0.5, 0.99)]
            row += [_f(percentile(samples.latencies, p)) for p in (0.5, 0.99)]
            if name != "direct":
                per_stream = result.cpu_ms_per_request()
                # Direct events are the upstream chunks (one per token).
                chunks = sum(direct.events) / len(direct.events) if direct.events else math.nan
                row += [
                    _plus(
                        percentile(gateway.first_tokens, 0.5) - percentile(direct.first_tokens, 0.5)
                    ),
                    _plus(percentile(gateway.latencies, 0.5) - percentile(direct.latencies, 0.5)),
                    _plus(percentile(gateway.latencies, 0.99) - percentile(direct.latencies, 0.99)),
                    _f(per_stream, 2),
                    _f(per_stream / chunks, 3),
                ]
            else:
                row += ["", "", "", "", ""]
            row += [_span(samples.events), _span(samples.text), _errors(samples)]
            rows.append(row)
    return markdown_table(header, rows)


def _foreign_cores(result: CellResult, names: tuple[str, ...]) -> float:
    """Cores busy with work that is not this run's (other users of the box) on average."""
    if BOX not in result.gateway_cpu or not result.gateway.elapsed:
        return math.nan
    ours = sum(result.gateway_cpu.get(name, 0.0) for name in names)
    return max(result.gateway_cpu[BOX] - ours, 0.0) / result.gateway.elapsed


def cpu_table(results: list[CellResult]) -> str:
    names = (*GATEWAY, *OTHERS)
    header = ["gateway cell", *names, "gateway + Redis", "other work on the box (cores)"]
    rows = [
        [
            f"{r.cell.label} {r.code}".strip(),
            *(_f(r.cpu_ms_per_request((n,)), 2) for n in names),
            f"**{_f(r.cpu_ms_per_request(), 2)}**",
            _f(_foreign_cores(r, names), 2),
        ]
        for r in results
    ]
    return markdown_table(header, rows)


def redis_table(results: list[CellResult], top: int = 8) -> str:
    """Commands and CPU of the fleet's Redis per request, with the commands that made most of
    them (scripts' inner commands counted by their own names)."""
    header = ["gateway cell", "commands/req", "Redis CPU ms/req", "most run (per request)"]
    rows = []
    for r in results:
        commands, cpu = r.redis_per_request()
        done = max(r.gateway.requests, 1)
        ranked = sorted(
            ((n, name) for name, n in r.redis.calls.items() if name != "info"), reverse=True
        )
        most = ", ".join(f"{name} {n / done:.1f}" for n, name in ranked[:top])
        rows.append([f"{r.cell.label} {r.code}".strip(), _f(commands, 1), _f(cpu, 3), most])
    return markdown_table(header, rows)


def error_examples(results: list[CellResult]) -> str:
    """The first body of each error status per cell, for the reader to see what failed."""
    lines = []
    for result in results:
        for name, samples in _targets(result):
            for status, body in samples.error_bodies.items():
                text = body.decode(errors="replace")
                lines.append(f"- {result.cell.label}, {name}, HTTP {status}: `{text}`")
    return "\n".join(lines)


def memory_table(memory: dict[str, Memory]) -> str:
    rows = [
        [name, _f(m.peak_kib / 1024), _f(m.tree_peak_kib / 1024)]
        for name, m in sorted(memory.items())
    ]
    return markdown_table(["process", "peak RSS MiB (VmHWM)", "with children MiB"], rows)


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor() or "unknown",
    )
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0]
    mem_gib = int(meminfo.split()[1]) / 1024 / 1024
    cores = len(os.sched_getaffinity(0))
    return (
        f"{cores} CPUs (nproc), {model}, {mem_gib:.1f} GiB memory, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


HOW_TO_READ = """\
Each cell runs the same requests against the provider simulator directly (`POST
/deepseek/chat/completions`) and through the gateway (`POST /api/v1/chat`: edge → Redis stream →
`deepseek` worker → simulator → pub/sub → edge), alternating in rounds within one run, so "added"
(gateway minus direct, same percentile) is the gateway's cost in latency on this very machine at
that moment; compare medians and ratios rather than single absolute times, and expect a few ms of
run-to-run noise. Upstream latency is set per request with the simulator directive `[[sim
latency_ms=N]]`; `c` is the number of callers, each sending its next request as soon as the
previous one is answered, over its own keep-alive connection. Streams come as a burst of 100 chunks
or paced, 5 ms apart (`[[sim chunk_delay_ms=5]]`): there the relay cannot batch, so its cost per
chunk is at its highest, and "added full" is the hop plus any coalescing delay. The load generator,
the simulator, Redis, PostgreSQL and every gateway process share the same cores, so at 0 ms
upstream and c ≥ 16 the box is saturated and latency there is queueing: read throughput there, and
read latency targets at 50 ms upstream. "CPU ms/req" is utime + stime from `/proc/<pid>/stat` of
the edge, the worker, audit, auth, keyvault and Redis (children included) over the gateway rounds,
divided by the requests sent (errors included: a cell with many fast errors looks cheaper than it
is); the breakdown table adds, for reference, the PostgreSQL server (which audit writes to), the
simulator and the load generator, and how many cores other work on the machine kept busy meanwhile
(busy time from `/proc/stat` minus this run's processes): above ~0.1 the cell was disturbed and its
figures are pessimistic. Errors are counted by HTTP status and the first body of each is listed.
"Redis per request" reads the fleet's own Redis server before and after the gateway
rounds: `INFO commandstats` (every command, those a Lua script runs included, the benchmark's
own `INFO` left out; the fleet's background work, such as the worker's blocking reads and
heartbeats, is in it) and `INFO cpu` (the server's user + system CPU). With `BENCH_BASELINE` set,
two fleets run side by side, "before" on that revision and "after" on this checkout, each with
its own Redis, and every round measures them one after the other. Peak RSS is `VmHWM` at the end
of the run. Service logs of the last run are kept in
`.data/bench-logs/`."""


LOAD_TEST_HEADING = "## Load test"


def load_test_section(previous: str) -> str:
    """The load-test section of the previous docs/benchmarks.md (from a `make loadtest` run, with
    its chart), which a new `make bench` keeps at the end of the page."""
    start = previous.find(f"\n{LOAD_TEST_HEADING}")
    return previous[start + 1 :] if start >= 0 else ""


def document(
    command: str,
    date: str,
    settings: str,
    chat: str,
    stream: str,
    cpu: str,
    redis: str,
    memory: str,
    errors: str,
    missing: list[str],
) -> str:
    parts = [
        "# Benchmarks",
        "",
        f"- Machine: {machine()}",
        f"- Command: `{command}`",
        f"- Date: {date}",
        f"- Settings: {settings}",
        "",
        "## How to read this",
        "",
        HOW_TO_READ,
        "",
        "## Non-streaming chat",
        "",
        chat,
        "",
        "## Streaming chat (100 chunks)",
        "",
        stream,
        "",
        "## CPU per request by process (ms, gateway rounds)",
        "",
        cpu,
        "",
        "## Redis per request (gateway rounds)",
        "",
        redis,
        "",
        "## Peak memory",
        "",
        memory,
        "",
    ]
    if errors:
        parts += ["## Errors seen (first body of each status)", "", errors, ""]
    if missing:
        parts += ["## Not measured in this run", "", *(f"- {m}" for m in missing), ""]
    return "\n".join(parts)
