"""The catalogue's caching and failure rules: edge replicas' catalogues in process on a real
Redis, their `models` jobs answered by real worker processes (a private pool, `reliability.py`)
calling the simulator."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest

from services.edge.admission import Admission
from services.edge.catalogue import REDIS_TTL_SECONDS, Catalogue
from services.edge.job_queue import JobQueue
from services.edge.replies import ReplyHub
from services.fleet.infra import free_port
from services.fleet.plan import FleetConfig
from services.simulator.registry import PROFILES_BY_ID
from shared.errors import InvalidRequest
from tests.e2e.helpers import entries_added
from tests.e2e.reliability import Pool, pool_for

DEEPSEEK_MODELS = list(PROFILES_BY_ID["deepseek"].models)
XAI_MODELS = list(PROFILES_BY_ID["xai"].models)


@pytest.fixture
async def pool(fleet: FleetConfig, redis_url: str) -> AsyncIterator[Pool]:
    async for created in pool_for(fleet, redis_url):
        yield created


@asynccontextmanager
async def replica(pool: Pool) -> AsyncIterator[Catalogue]:
    """An edge replica's catalogue, on the pool's Redis prefix."""
    hub = ReplyHub(pool.redis, pool.keys)
    await hub.start()
    try:
        admission = Admission(pool.redis, pool.keys)
        queue = JobQueue(
            pool.redis, hub, pool.keys, admission, timeout=30, maxlen=1000, queue_limit=1000
        )
        yield Catalogue(pool.redis, queue, pool.keys)
    finally:
        await hub.close()


async def jobs_added(pool: Pool, provider: str) -> int:
    """How many jobs were ever added to the provider's stream (answered ones are deleted)."""
    stream = pool.keys.jobs(provider)
    if not await pool.redis.exists(stream):
        return 0
    return await entries_added(pool.redis, stream)


def unreachable(provider: str) -> dict[str, str]:
    """A worker's settings that send its calls where nothing listens."""
    url = f"http://127.0.0.1:{free_port()}/{provider}"
    return {f"{provider.upper()}_BASE_URL": url, "RETRY_MAX_ATTEMPTS": "1"}


async def test_a_list_is_fetched_once_then_served_from_memory_and_redis(pool: Pool) -> None:
    await pool.worker("deepseek")
    cached = pool.keys.models("deepseek")
    async with replica(pool) as catalogue:
        results = await asyncio.gather(*(catalogue.models("deepseek") for _ in range(5)))

        assert results == [DEEPSEEK_MODELS] * 5
        assert await jobs_added(pool, "deepseek") == 1
        assert orjson.loads(await pool.redis.get(cached)) == DEEPSEEK_MODELS
        assert REDIS_TTL_SECONDS - 60 < await pool.redis.ttl(cached) <= REDIS_TTL_SECONDS
        # From memory: with the Redis copy gone, the list is still there, and not fetched again.
        await pool.redis.delete(cached)
        await catalogue.check("deepseek", "deepseek-chat")
        assert await catalogue.models("deepseek") == DEEPSEEK_MODELS
        assert await jobs_added(pool, "deepseek") == 1
        assert not await pool.redis.exists(cached)


async def test_another_replica_finds_the_list_in_redis(pool: Pool) -> None:
    await pool.worker("xai")
    async with replica(pool) as first, replica(pool) as second:
        assert await first.models("xai") == XAI_MODELS
        assert await second.models("xai") == XAI_MODELS
    assert await jobs_added(pool, "xai") == 1  # the second replica read what the first stored


async def test_a_failed_fetch_is_unavailable_and_retried_by_the_listing(pool: Pool) -> None:
    await pool.worker("deepseek")
    broken = await pool.worker("xai", **unreachable("xai"))
    async with replica(pool) as catalogue:
        first = await catalogue.listing()
        status = {p.id: p.status for p in first.providers}
        assert (status["xai"], status["deepseek"]) == ("unavailable", "active")
        assert not await pool.redis.exists(pool.keys.models("xai"))  # a failure is not cached

        broken.stop()
        await pool.worker("xai")
        second = await catalogue.listing()
        assert {p.id: p.models for p in second.providers}["xai"] == XAI_MODELS
    assert await jobs_added(pool, "xai") == 2


async def test_an_unknown_list_does_not_block_but_a_known_one_rejects(pool: Pool) -> None:
    await pool.worker("deepseek", **unreachable("deepseek"))
    await pool.worker("xai")
    async with replica(pool) as catalogue:
        await catalogue.check("deepseek", "anything")
        await catalogue.check("xai", XAI_MODELS[0])
        with pytest.raises(InvalidRequest) as caught:
            await catalogue.check("xai", "grok-9")
    assert caught.value.details == {
        "provider": "xai",
        "model": "grok-9",
        "available_models": XAI_MODELS,
        "code": "model_not_found",
    }


async def test_hugging_face_retrieval_models_are_not_checked_against_its_chat_list(
    pool: Pool,
) -> None:
    async with replica(pool) as catalogue:
        await catalogue.check("huggingface", "BAAI/bge-reranker-large", "rerank")
        assert await jobs_added(pool, "huggingface") == 0  # no list was asked for
        await pool.worker("huggingface")
        with pytest.raises(InvalidRequest):
            await catalogue.check("huggingface", "BAAI/bge-reranker-large", "chat")
