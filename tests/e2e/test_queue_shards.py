"""A provider's queue spread over several streams (`QUEUE_SHARDS`): the edge puts each job on
the shard its id picks, the worker pool reads every shard, and every job is answered."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from services.fleet.plan import FleetConfig
from shared.redis_keys import RedisKeys
from tests.e2e.helpers import auth, chat_body, entries_added, running_edge
from tests.e2e.reliability import Pool, pool_for

SHARDS = 3


@pytest.fixture
async def pool(fleet: FleetConfig, redis_url: str) -> AsyncIterator[Pool]:
    async for created in pool_for(fleet, redis_url):
        yield created


async def test_jobs_spread_over_every_shard_and_are_all_answered(
    pool: Pool, fleet: FleetConfig, user_token: str
) -> None:
    await pool.worker("deepseek", QUEUE_SHARDS=str(SHARDS))
    with running_edge(fleet, REDIS_PREFIX=pool.keys.prefix, QUEUE_SHARDS=str(SHARDS)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as edge:
            body = chat_body("deepseek", "deepseek-chat", "Hi")
            answers = await asyncio.gather(
                *(edge.post("/api/v1/chat", json=body, headers=auth(user_token)) for _ in range(24))
            )
    assert [a.status_code for a in answers] == [200] * 24, answers[0].text
    keys = RedisKeys(pool.keys.prefix, SHARDS)
    added = [await entries_added(pool.redis, stream) for stream in keys.job_shards("deepseek")]
    assert all(added) and sum(added) >= 24, added  # the model list's job comes on top
