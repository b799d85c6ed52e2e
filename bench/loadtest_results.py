"""What a load test observed (queue depth, memory, Locust's summary) and its report."""

import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.loadtest_config import Config
from bench.proc import rss_kib
from bench.report import markdown_table

SUMMARY = "summary.json"  # written by the Locust process (bench/locustfile.py)
SAMPLE_SECONDS = 1.0


@dataclass
class Observed:
    """What the sampler saw while the load ran."""

    started: float = field(default_factory=time.time)  # wall clock, as Locust starts
    depth_max: dict[str, float] = field(default_factory=dict)
    depth_last: dict[str, float] = field(default_factory=dict)
    metrics_problem: str | None = None  # why the queue depth could not be read, if so
    rss_warm: dict[str, int] = field(default_factory=dict)  # KiB, at the end of the warm-up
    rss_last: dict[str, int] = field(default_factory=dict)  # KiB, at the last sample
    # Every sample, for the charts: (wall-clock time, value per provider or process).
    depth_series: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    rss_series: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    def sample_queues(self, client: httpx.Client, url: str) -> None:
        try:
            response = client.get(f"{url}/metrics")
            response.raise_for_status()
        except httpx.HTTPError as error:
            self.metrics_problem = f"{url}/metrics: {type(error).__name__} {error}"
            return
        self.metrics_problem = None
        depth: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):
            if family.name == "gateway_queue_depth":
                depth |= {sample.labels["provider"]: sample.value for sample in family.samples}
        for provider, value in depth.items():
            self.depth_last[provider] = value
            self.depth_max[provider] = max(self.depth_max.get(provider, 0.0), value)
        self.depth_series.append((time.time(), depth))

    def sample_memory(self, pids: dict[str, int], warm: bool) -> None:
        self.rss_last = {name: rss_kib(pid) for name, pid in pids.items()}
        self.rss_series.append((time.time(), self.rss_last))
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


def requests_table(results: Results) -> str:
    header = ["request", "requests", "failures", "req/s", "p50 ms", "p90 ms", "p99 ms"]
    return markdown_table(
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
    return markdown_table(["request", "status", "type", "count"], rows)


def queue_table(observed: Observed, mix: dict[str, int]) -> str:
    if observed.metrics_problem and not observed.depth_max:
        return f"not available ({observed.metrics_problem})"
    providers = [p for p in observed.depth_max if p in mix or observed.depth_max[p]]
    rows = [[p, f"{observed.depth_max[p]:.0f}", f"{observed.depth_last[p]:.0f}"] for p in providers]
    return markdown_table(["provider", "max", "at end"], rows)


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
    return markdown_table(header, rows), grown


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
