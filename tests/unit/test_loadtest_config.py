"""`make loadtest` settings: read from `LOADTEST_*`, defaults that follow each other, and a bad
value refused naming its variable."""

import pytest

from bench.loadtest_config import Config


@pytest.fixture(autouse=True)
def no_loadtest_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("USERS", "SOAK", "DURATION", "WARMUP", "SPAWN_RATE", "MIX", "STREAM_SHARE"):
        monkeypatch.delenv(f"LOADTEST_{name}", raising=False)


def test_defaults_and_soak_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = Config.from_env()
    assert (plain.users, plain.duration, plain.warmup, plain.spawn_rate) == (20, 60, 6, 4.0)
    assert (plain.mix, plain.stream_share, plain.soak) == ({"deepseek": 1}, 0.2, False)
    monkeypatch.setenv("LOADTEST_SOAK", "1")
    monkeypatch.setenv("LOADTEST_MIX", "deepseek:3,anthropic:1")
    monkeypatch.setenv("LOADTEST_SPAWN_RATE", "")  # empty counts as unset
    soak = Config.from_env()
    assert (soak.soak, soak.duration, soak.warmup) == (True, 600, 60)
    assert soak.mix == {"deepseek": 3, "anthropic": 1}
    assert soak.spawn_rate == 4.0


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"LOADTEST_DURATION": "30sec"}, "LOADTEST_DURATION: Value error, not a duration"),
        ({"LOADTEST_USERS": "0"}, "LOADTEST_USERS: Input should be greater than or equal to 1"),
        ({"LOADTEST_MIX": "nope:1"}, "LOADTEST_MIX: Value error, unknown provider 'nope'"),
        ({"LOADTEST_STREAM_SHARE": "2"}, "LOADTEST_STREAM_SHARE: Input should be less than"),
        (
            {"LOADTEST_WARMUP": "2m", "LOADTEST_DURATION": "1m"},
            "LOADTEST_WARMUP must be shorter than LOADTEST_DURATION",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, str], problem: str
) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=problem):
        Config.from_env()
