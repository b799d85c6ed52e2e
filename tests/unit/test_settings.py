"""Settings are checked when a process starts: a bad duration stops it there, naming the setting."""

import os
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

from shared.settings import Duration, Settings

ROOT = Path(__file__).resolve().parents[2]


def settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_durations_are_read_in_every_unit_and_keep_their_text() -> None:
    read = settings(
        REQUEST_TIMEOUT="90",
        STREAM_COALESCE="250ms",
        LOGIN_LOCKOUT="15m",
        JWT_EXPIRY="24h",
        CACHE_TTL="7d",
    )
    assert read.request_timeout.seconds == 90
    assert read.stream_coalesce.seconds == 0.25
    assert read.login_lockout.seconds == 900
    assert (read.jwt_expiry.text, read.jwt_expiry.whole_seconds) == ("24h", 86_400)
    assert read.cache_ttl.seconds == 7 * 86_400
    assert settings().reclaim_idle == Duration("30s", 30)


def test_every_duration_setting_is_a_duration() -> None:
    """No duration is left as a string to be parsed (or not) when first read."""
    as_text = [
        name
        for name, field in Settings.model_fields.items()
        if field.annotation is str
        and any(word in name for word in ("timeout", "window", "ttl", "interval", "delay"))
    ]
    assert as_text == []


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("RECLAIM_IDLE", "30sec", "not a duration: '30sec'"),
        ("JWT_EXPIRY", "1 day", "not a duration: '1 day'"),
        ("REQUEST_TIMEOUT", "0", "must be longer than 0"),
        ("HEARTBEAT_INTERVAL", "-5s", "not a duration: '-5s'"),
    ],
)
def test_a_bad_duration_is_refused_naming_its_setting(name: str, value: str, problem: str) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        settings(**{name: value})
    [error] = refused.value.errors()
    assert error["loc"] == (name,)
    assert problem in error["msg"]


@pytest.mark.parametrize(
    "command",
    [
        ["services.edge"],
        ["services.auth"],
        ["services.keyvault"],
        ["services.audit"],
        ["services.workers", "--provider", "deepseek"],
        ["services.fleet"],
    ],
)
def test_a_service_given_a_bad_duration_stops_at_start_naming_it(command: list[str]) -> None:
    env = {**os.environ, "RECLAIM_IDLE": "30sec", "LOG_LEVEL": "warning"}
    stopped = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stopped.returncode == 1, stopped.stderr
    assert "Invalid settings:\n  RECLAIM_IDLE: Value error, not a duration: '30sec'" in (
        stopped.stderr
    )
    assert "Traceback" not in stopped.stderr


def test_cluster_mode_needs_a_node_to_start_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(pydantic.ValidationError) as refused:
        settings(REDIS_CLUSTER="true")
    assert "REDIS_CLUSTER=true needs REDIS_URL" in str(refused.value)
    named = settings(REDIS_CLUSTER="true", REDIS_URL="redis://10.0.0.11:6379/0", QUEUE_SHARDS="3")
    assert (named.redis_cluster, named.redis_keys.shards) == (True, 3)
