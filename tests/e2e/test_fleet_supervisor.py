"""`make run` outliving a crashed process: the fleet started as `make run` starts it
(`python -m services.fleet`), on its own ports, data folder, database and key prefix. A worker
SIGKILLed during five in-flight chats is restarted, its replacement finishes the five (the
edge keeps their connections), and SIGINT then stops every process of the fleet.

The worker's PID is found in the fleet's own status file (`DATA_DIR/fleet.json`).
"""

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.fleet.infra import create_database, drop_database, free_port
from shared.providers import PROVIDERS
from tests.e2e.helpers import auth, chat_body, new_trace, register
from tests.e2e.reliability import upstream_calls, wait_for_upstream

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
START_WITHIN = 180.0  # 14 processes started one after the other on two busy cores


def free_port_run(count: int) -> int:
    """The first of `count` consecutive free ports (the fleet gives its worker pools
    `METRICS_PORT`, `METRICS_PORT + 1`, ...)."""
    for _ in range(100):
        first = free_port()
        if first + count > 65535:
            continue
        with contextlib.ExitStack() as held:
            try:
                for port in range(first, first + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return first
    raise RuntimeError(f"no {count} consecutive free ports")


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class RunningFleet:
    process: subprocess.Popen[bytes]
    data_dir: Path
    ports: list[int]
    edge_url: str
    simulator_url: str

    @property
    def output(self) -> str:
        return (self.data_dir / "fleet.out").read_text(errors="replace")

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = json.loads((self.data_dir / "fleet.json").read_text())
        return status

    def pids(self) -> dict[str, int | None]:
        return {name: s["pid"] for name, s in self.status()["services"].items()}

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_WITHIN
        while not (self.data_dir / "fleet.json").exists():
            assert self.process.poll() is None, f"the fleet stopped:\n{self.output}"
            assert time.monotonic() < deadline, f"the fleet did not start:\n{self.output}"
            time.sleep(0.2)


def fleet_env(
    redis_url: str, database_url: str, data_dir: Path
) -> tuple[dict[str, str], list[int]]:
    """The environment of a `make run` of its own: the simulated providers, no job reclaimed
    by idle time (only the replacement can finish a dead worker's jobs in time)."""
    secrets_of_providers = {PROVIDERS[p].key_setting.upper() for p in PROVIDERS}
    base = {k: v for k, v in os.environ.items() if k not in secrets_of_providers}
    names = ["PORT", "AUTH_PORT", "KEYVAULT_PORT", "AUDIT_PORT", "SIMULATOR_PORT", "CONSOLE_PORT"]
    ports = {name: free_port() for name in names}
    metrics = free_port_run(len(PROVIDERS))
    env = {
        **base,
        **{name: str(port) for name, port in ports.items()},
        "METRICS_PORT": str(metrics),
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "REDIS_PREFIX": f"gw-fleet-{secrets.token_hex(4)}",
        "DATA_DIR": str(data_dir),
        "BCRYPT_ROUNDS": "4",
        "NODE_ENV": "test",
        "REQUEST_TIMEOUT": "90s",
        "RECLAIM_IDLE": "10m",
    }
    return env, [*ports.values(), *range(metrics, metrics + len(PROVIDERS))]


@pytest.fixture
def running_fleet(redis_url: str, postgres_server: str, run_dir: Path) -> Iterator[RunningFleet]:
    name = f"gw_fleet_{secrets.token_hex(4)}"
    database_url = asyncio.run(create_database(postgres_server, name))
    data_dir = run_dir / f"make-run-{secrets.token_hex(3)}"
    data_dir.mkdir()
    env, ports = fleet_env(redis_url, database_url, data_dir)
    with (data_dir / "fleet.out").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.fleet"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    fleet = RunningFleet(
        process,
        data_dir,
        ports,
        edge_url=f"http://127.0.0.1:{env['PORT']}",
        simulator_url=f"http://127.0.0.1:{env['SIMULATOR_PORT']}",
    )
    children: set[int] = set()
    try:
        fleet.wait_ready()
        children.update(pid for pid in fleet.pids().values() if pid)
        yield fleet
    finally:
        with contextlib.suppress(FileNotFoundError):
            children.update(pid for pid in fleet.pids().values() if pid)
        if process.poll() is None:  # the test failed before it stopped the fleet
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in children:  # a child the fleet could not stop
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        asyncio.run(drop_database(postgres_server, name))


async def test_make_run_outlives_a_killed_worker_and_stops_on_ctrl_c(
    running_fleet: RunningFleet,
) -> None:
    fleet = running_fleet
    before = fleet.pids()
    edge = httpx.AsyncClient(base_url=fleet.edge_url, timeout=120.0)
    simulator = httpx.AsyncClient(base_url=fleet.simulator_url, timeout=10.0)
    async with edge, simulator:
        token = await register(edge)
        traces = [new_trace() for _ in range(5)]
        body = chat_body("xai", "grok-3", "hi [[sim latency_ms=8000]]")
        chats = [
            asyncio.create_task(edge.post("/api/v1/chat", json=body, headers=auth(token, t)))
            for t in traces
        ]
        for trace in traces:  # all five are running on the worker
            await wait_for_upstream(simulator, trace)

        victim = before["worker-xai"]
        assert victim is not None
        os.kill(victim, signal.SIGKILL)

        deadline = time.monotonic() + 60
        while (now := fleet.pids()["worker-xai"]) in (None, victim):
            assert time.monotonic() < deadline, f"worker-xai not restarted:\n{fleet.output}"
            await asyncio.sleep(0.1)
        assert alive(now)
        assert fleet.status()["services"]["worker-xai"]["restarts"] == 1

        responses = await asyncio.gather(*chats)
        assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
        assert all(r.json()["choices"][0]["message"]["content"] for r in responses)
        for trace in traces:  # run again once, by the replacement
            assert len(await upstream_calls(simulator, trace)) == 2

    after = fleet.pids()
    assert {k: v for k, v in after.items() if k != "worker-xai"} == {
        k: v for k, v in before.items() if k != "worker-xai"
    }
    assert f"worker-xai (pid {victim}) was killed by SIGKILL" in fleet.output

    fleet.process.send_signal(signal.SIGINT)
    assert await asyncio.to_thread(fleet.process.wait, 60) == 0
    assert not [name for name, pid in after.items() if pid and alive(pid)]
    assert not [port for port in fleet.ports if listening(port)]
    assert not (fleet.data_dir / "fleet.json").exists()
