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
- LOADTEST_ACCOUNTS: gateway users registered for a run that registers them, the Locust users
  taking turns (default 1: all load is one user's, so its limits live in one Redis slot).
- LOADTEST_MIX: providers and weights, e.g. `deepseek:3,anthropic:1` (default `deepseek`).
- LOADTEST_STREAM_SHARE: share of streamed requests, 0 to 1 (default 0.2).
- LOADTEST_UPSTREAM_MS, LOADTEST_ANSWER_TOKENS: the simulator's latency and answer length
  (defaults 50 and 20; a real provider just sees them as text).
- LOADTEST_MAX_ERROR_RATE: failed share of requests above which the run fails (default 0.01).
- LOADTEST_MAX_RSS_GROWTH: soak mode: percent of memory growth flagged (default 10).
- LOADTEST_OUT: folder for Locust's output and figures (default .data/loadtest).
- REDIS_URL / DATABASE_URL: servers the started fleet uses instead of embedded ones.
"""

from pathlib import Path
from typing import Any

import pydantic
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bench.mix import format_mix, parse_mix
from shared.settings import Duration


class Config(BaseSettings):
    """Every `LOADTEST_*` variable (an empty one counts as unset), checked when read."""

    model_config = SettingsConfigDict(
        env_prefix="LOADTEST_",
        env_ignore_empty=True,
        enable_decoding=False,  # values are read as written (a mix is `name:weight,...`)
        extra="ignore",
        frozen=True,
    )

    users: int = Field(20, ge=1)
    accounts: int = Field(1, ge=1, le=1000)
    soak: bool = False
    duration_set: Duration | None = Field(None, validation_alias="LOADTEST_DURATION")
    warmup_set: Duration | None = Field(None, validation_alias="LOADTEST_WARMUP")
    spawn_rate_set: float | None = Field(None, gt=0, validation_alias="LOADTEST_SPAWN_RATE")
    url: str | None = None
    token: str | None = None
    email: str | None = None
    password: str | None = None
    mix: dict[str, int] = Field(default_factory=lambda: parse_mix("deepseek"))
    stream_share: float = Field(0.2, ge=0, le=1)
    upstream_ms: int = Field(50, ge=0)
    answer_tokens: int = Field(20, ge=1)
    max_error_rate: float = Field(0.01, ge=0, le=1)
    max_rss_growth: float = Field(10.0, gt=0)  # percent
    out: Path = Path(".data/loadtest")

    @field_validator("mix", mode="before")
    @classmethod
    def _mix(cls, value: Any) -> Any:
        return parse_mix(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _warmup_within_the_run(self) -> "Config":
        if self.warmup >= self.duration:
            raise ValueError("LOADTEST_WARMUP must be shorter than LOADTEST_DURATION")
        return self

    @property
    def duration(self) -> int:
        """Seconds of load (default 60 s; 10 min in soak mode)."""
        written = self.duration_set or Duration.parse("10m" if self.soak else "60s")
        return written.whole_seconds

    @property
    def warmup(self) -> int:
        """Soak mode: seconds before the memory baseline is taken."""
        return self.warmup_set.whole_seconds if self.warmup_set else self.duration // 10

    @property
    def spawn_rate(self) -> float:
        return self.spawn_rate_set or max(self.users / 5, 1)

    @classmethod
    def from_env(cls) -> "Config":
        """The settings of this run; a bad value is a `ValueError` naming its variable."""
        try:
            return cls()
        except pydantic.ValidationError as exc:
            problems = []
            for error in exc.errors():
                name = ".".join(str(part) for part in error["loc"])
                if name and not name.startswith("LOADTEST_"):
                    name = f"LOADTEST_{name.upper()}"
                problems.append(f"{name}: {error['msg']}" if name else error["msg"])
            raise ValueError("; ".join(problems)) from None

    def describe(self, target: str) -> str:
        return (
            f"{self.users} users (spawn {self.spawn_rate:g}/s), {self.duration} s, "
            f"mix {format_mix(self.mix)}, {self.stream_share:.0%} streamed, upstream "
            f"{self.upstream_ms} ms / {self.answer_tokens} tokens; target: {target}"
        )
