"""Charts of a load test over time, as PNG files beside its summary (LOADTEST_OUT):

- throughput.png: requests per second, in total and per request name;
- latency.png: p50, p90 and p99 latency over Locust's sliding window (about 10 s);
- errors.png: failed requests per second, in total and per request name;
- queue-depth.png: jobs on each provider's stream (the edge's `gateway_queue_depth`);
- memory.png (soak only): resident memory of the edge and of each worker pool.

Throughput, latency and errors come from Locust's per-second history (`--csv-full-history`,
LOCUST_CSV below); queue depth and memory from the samples `bench.loadtest` took meanwhile.
"""

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench.loadtest_config import Config
from bench.loadtest_results import Observed
from bench.mix import format_mix

LOCUST_CSV = "locust"  # Locust writes locust_stats_history.csv, locust_stats.csv, ...
LOCUST_HTML = "report.html"  # Locust's own HTML report of the run
CHARTS = ("throughput.png", "latency.png", "errors.png", "queue-depth.png", "memory.png")
TOTAL = "Aggregated"  # Locust's name for the row of all requests
PERCENTILES = ("50%", "90%", "99%")


@dataclass
class Series:
    """Values over time: seconds since the load started, and the value then."""

    seconds: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, second: float, value: float) -> None:
        self.seconds.append(second)
        self.values.append(value)


History = dict[str, dict[str, Series]]  # request name -> column -> series


def read_history(out: Path, started: float) -> History:
    """Locust's stats history: one row per second and request name (and the total)."""
    history: History = defaultdict(lambda: defaultdict(Series))
    path = out / f"{LOCUST_CSV}_stats_history.csv"
    if not path.exists():
        return history
    with path.open(newline="") as rows:
        for row in csv.DictReader(rows):
            second = float(row["Timestamp"]) - started
            for column in ("Requests/s", "Failures/s", *PERCENTILES):
                if row.get(column) not in (None, "", "N/A"):
                    history[row["Name"]][column].add(second, float(row[column]))
    return history


def _figure(title: str, ylabel: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(9, 3.6), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("seconds since the load started")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def _save(figure: Figure, axes: Axes, path: Path) -> Path:
    axes.set_ylim(0, max(axes.get_ylim()[1], 1))  # an all-zero series stays readable
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8, loc="best")
    figure.savefig(path)
    return path


def _per_name(history: History, column: str, title: str, ylabel: str, path: Path) -> Path:
    """The total and each request name that has a non-zero value."""
    figure, axes = _figure(title, ylabel)
    total = history.get(TOTAL, {}).get(column)
    if total:
        axes.plot(total.seconds, total.values, label="total", color="black", linewidth=2)
    for name in sorted(n for n in history if n != TOTAL):
        series = history[name].get(column)
        if series and any(series.values):
            axes.plot(series.seconds, series.values, label=name, linewidth=1)
    return _save(figure, axes, path)


def _latency(history: History, title: str, path: Path) -> Path:
    figure, axes = _figure(title, "ms")
    for column in PERCENTILES:
        series = history.get(TOTAL, {}).get(column)
        if series:
            axes.plot(series.seconds, series.values, label=f"p{column.rstrip('%')}")
    return _save(figure, axes, path)


def _samples(
    samples: list[tuple[float, dict[str, float]]],
    started: float,
    title: str,
    ylabel: str,
    path: Path,
    warmup: float | None = None,
) -> Path:
    """Each name that has a non-zero value."""
    figure, axes = _figure(title, ylabel)
    names = sorted({name for _, values in samples for name, value in values.items() if value})
    for name in names:
        points = [(at - started, values[name]) for at, values in samples if name in values]
        axes.plot([p[0] for p in points], [p[1] for p in points], label=name)
    if warmup is not None:
        axes.axvline(warmup, color="grey", linestyle="--", label="end of warm-up")
    return _save(figure, axes, path)


def write_charts(config: Config, observed: Observed) -> list[Path]:
    """The PNG files written to `config.out`."""
    out, started = config.out, observed.started
    history = read_history(out, started)
    run = (
        f"{config.users} users, mix {format_mix(config.mix)}, {config.stream_share:.0%} "
        f"streamed, upstream {config.upstream_ms} ms"
    )
    throughput, failures = f"Throughput\n{run}", f"Failed requests\n{run}"
    latency = f"Latency percentiles of all requests over the last ~10 s\n{run}"
    charts = [
        _per_name(history, "Requests/s", throughput, "requests/s", out / "throughput.png"),
        _latency(history, latency, out / "latency.png"),
        _per_name(history, "Failures/s", failures, "failures/s", out / "errors.png"),
        _samples(
            observed.depth_series,
            started,
            f"Queue depth: jobs on each provider's stream\n{run}",
            "jobs",
            out / "queue-depth.png",
        ),
    ]
    if config.soak:
        mib = [(at, {n: kib / 1024 for n, kib in rss.items()}) for at, rss in observed.rss_series]
        title = f"Resident memory (VmRSS) per process\n{run}"
        charts.append(_samples(mib, started, title, "MiB", out / "memory.png", config.warmup))
    return charts
