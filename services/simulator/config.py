"""Simulator settings: built once by the CLI (or a test) and kept on `app.state.config`."""

from dataclasses import dataclass

from services.simulator.keys import DEMO_KEY


@dataclass(frozen=True)
class SimulatorConfig:
    tokens: int = 12
    reasoning_tokens: int = 8
    latency_ms: int = 0
    chunk_delay_ms: int = 0
    keepalive_ms: int = 1000
    record_limit: int = 1000
    api_keys: tuple[str, ...] = (DEMO_KEY,)  # keys accepted besides those it issued
