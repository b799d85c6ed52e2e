"""Redis names: every script's and transaction's names share a hash tag, so one cluster slot."""

import pytest
from redis.crc import key_slot

from shared.redis_keys import RedisKeys

KEYS = RedisKeys("gw", shards=3)


def slot(name: str) -> int:
    return int(key_slot(name.encode()))


def test_a_users_names_and_its_gateway_keys_names_share_the_users_slot() -> None:
    user = [
        KEYS.limits("user", "u1"),
        KEYS.rate_window("user", "u1"),
        KEYS.token_budget("user", "u1"),
        KEYS.open_streams("user", "u1"),
        KEYS.spend("user", "u1", "d2026-12-03"),
        KEYS.revoked("u1", "jti-1"),
        KEYS.own_keys("u1"),
    ]
    key = [
        KEYS.limits("key", "k1", "u1"),
        KEYS.rate_window("key", "k1", "u1"),
        KEYS.token_budget("key", "k1", "u1"),
        KEYS.open_streams("key", "k1", "u1"),
        KEYS.spend("key", "k1", "d2026-12-03", "u1"),
    ]
    assert {slot(name) for name in user + key} == {slot(KEYS.limits("user", "u1"))}
    assert slot(KEYS.limits("user", "u2")) != slot(KEYS.limits("user", "u1"))  # spread


def test_a_gateway_keys_names_cannot_be_built_without_its_user() -> None:
    with pytest.raises(ValueError, match="user's id"):
        KEYS.limits("key", "k1")


def test_a_providers_names_share_a_slot_and_each_shard_has_its_own() -> None:
    provider = {KEYS.jobs("deepseek"), KEYS.breaker("deepseek"), KEYS.heartbeat("deepseek")}
    provider |= {KEYS.dead_letters("deepseek"), KEYS.models("deepseek")}
    assert len({slot(name) for name in provider}) == 1
    shards = KEYS.job_shards("deepseek")
    assert shards[0] == KEYS.jobs("deepseek") and len({slot(name) for name in shards}) == 3


def test_a_job_always_goes_to_the_same_shard_and_jobs_spread_over_all() -> None:
    assert KEYS.jobs_for("deepseek", "job_1") == KEYS.jobs_for("deepseek", "job_1")
    chosen = {KEYS.jobs_for("deepseek", f"job_{n}") for n in range(60)}
    assert chosen == set(KEYS.job_shards("deepseek"))
    assert RedisKeys("gw").jobs_for("deepseek", "job_1") == RedisKeys("gw").jobs("deepseek")


def test_a_jobs_marks_share_a_slot() -> None:
    assert slot(KEYS.streamed("job_1")) == slot(KEYS.cancelled("job_1"))
