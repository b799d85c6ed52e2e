"""The settings of `make loadtest` and `make soak`, read from the environment.

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.mix import format_mix, parse_mix
from shared.settings import parse_duration

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
