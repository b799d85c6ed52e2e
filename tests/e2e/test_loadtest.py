"""`make loadtest` against the running test fleet: a short run reports throughput, latency
percentiles and queue depth per provider, and no errors, and leaves its charts and Locust's
HTML report beside the summary."""

import asyncio
import os
import re
import sys
from pathlib import Path

from services.fleet.plan import FleetConfig

PNG = b"\x89PNG\r\n\x1a\n"


async def test_a_short_load_test_reports_throughput_and_no_errors(
    fleet: FleetConfig, user_token: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "LOADTEST_URL": fleet.edge_url,
        "LOADTEST_TOKEN": user_token,
        "LOADTEST_USERS": "5",
        "LOADTEST_SPAWN_RATE": "5",
        "LOADTEST_DURATION": "5s",
        "LOADTEST_MIX": "deepseek:2,anthropic:1",
        "LOADTEST_STREAM_SHARE": "0.5",
        "LOADTEST_UPSTREAM_MS": "0",
        "LOADTEST_MAX_ERROR_RATE": "0",
        "LOADTEST_OUT": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadtest",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    report = output.decode()

    assert process.returncode == 0, report
    throughput = re.search(r"^Throughput: ([\d.]+) req/s", report, re.MULTILINE)
    assert throughput and float(throughput.group(1)) > 0, report
    total = re.search(r"^\| total +\| (\d+) +\| (\d+) +\| [\d.]+ +\| (\d+) +\|", report, re.M)
    assert total, report
    requests, failures, p50 = (int(v) for v in total.groups())
    assert requests > 0 and failures == 0 and p50 > 0, report
    assert "## Errors by status and type\n\nnone" in report
    for name in ("chat deepseek", "stream deepseek", "chat anthropic", "stream anthropic"):
        assert f"| {name} " in report, report
    assert re.search(r"^\| deepseek +\| \d+ +\| \d+ +\|$", report, re.MULTILINE), report
    assert "Error rate 0.00% (limit 0.00%). OK." in report

    charts = ["throughput.png", "latency.png", "errors.png", "queue-depth.png"]
    assert f"Charts in {tmp_path}: {', '.join(charts)}; " in report
    for chart in charts:
        assert (tmp_path / chart).read_bytes().startswith(PNG), chart
    assert not (tmp_path / "memory.png").exists()  # soak runs only
    html = (tmp_path / "report.html").read_text()
    assert "<html" in html and "chat deepseek" in html
