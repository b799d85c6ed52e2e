"""A master of the Redis Cluster dies under load: the fleet rides through the failover.

A cluster of three masters, each with a replica, and a fleet in cluster mode (one worker pool)
on it. While clients keep chats in flight, the master serving the provider's job stream is
killed with SIGKILL; its replica is promoted. Every request the edge accepted ends, with its
answer or a clear 5xx in the error envelope (none hangs), and once the cluster reports
`cluster_state:ok` again chats succeed with no process restarted.
"""

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from services.fleet.infra import create_database, drop_database, free_port
from services.fleet.plan import FleetConfig, plan
from services.fleet.processes import Service, stop_all
from services.fleet.redis_cluster import LocalCluster, MissingBinaries, binaries, local_cluster
from shared.redis_keys import RedisKeys
from tests.e2e.helpers import auth, chat_body, register

PROVIDER = "deepseek"
CLIENTS = 6


@pytest.fixture(scope="module")
def cluster(run_dir: Path) -> Iterator[LocalCluster]:
    try:
        binaries()
    except MissingBinaries as missing:
        pytest.skip(str(missing))
    with local_cluster(run_dir / "failover-cluster", masters=3, replicas=1) as started:
        yield started


@pytest.fixture(scope="module")
def fleet_on_cluster(
    cluster: LocalCluster, postgres_server: str, run_dir: Path
) -> Iterator[tuple[FleetConfig, list[Service]]]:
    name = f"gw_test_failover_{secrets.token_hex(4)}"
    database_url = asyncio.run(create_database(postgres_server, name))
    data_dir = run_dir / "failover-fleet"
    config = FleetConfig(
        redis_url=cluster.url,
        database_url=database_url,
        data_dir=data_dir,
        edge_port=free_port(),
        auth_port=free_port(),
        keyvault_port=free_port(),
        simulator_port=free_port(),
        providers=(PROVIDER,),
        redis_prefix=f"gw-failover-{secrets.token_hex(4)}",
        log_dir=data_dir / "logs",
        extra_env={
            "REDIS_CLUSTER": "true",
            "BCRYPT_ROUNDS": "4",
            "NODE_ENV": "test",
            "REQUEST_TIMEOUT": "15s",
            "RATE_LIMIT_MAX": "100000",
            "AUTH_RATE_LIMIT_MAX": "100000",
            "HEARTBEAT_INTERVAL": "500ms",
            "RECLAIM_IDLE": "3s",
        },
    )
    services = plan(config)
    try:
        for service in services:
            service.start()
            service.wait_healthy()
        yield config, services
    finally:
        stop_all(services)
        asyncio.run(drop_database(postgres_server, name))


def master_of(cluster: LocalCluster, name: str) -> int:
    """The port of the master now serving `name`'s slot."""
    with redis.RedisCluster.from_url(cluster.url) as client:
        node = client.get_node_from_key(name)
        assert node is not None
        return int(node.port)


def clear_5xx(response: httpx.Response) -> bool:
    """A 5xx in the error envelope, with its type and trace id."""
    try:
        error = response.json()["error"]
        return response.status_code >= 500 and bool(error["type"] and error["trace_id"])
    except (ValueError, KeyError, TypeError):
        return False


async def until(check: object, within: float, what: object) -> None:
    """Polls `check` until it holds; `what` (a callable for a message built at the time) says
    what did not happen."""
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):  # type: ignore[arg-type]
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"{said} after {within} s")
        await asyncio.sleep(0.2)


def unpromoted(cluster: LocalCluster) -> str:
    masters = cluster.masters()
    logs = "\n".join(n.log_tail() for n in cluster.nodes if n not in masters)
    return f"no replica was promoted; the other nodes' logs end:\n{logs}"


async def test_a_master_killed_under_load_fails_over_and_the_fleet_recovers(
    cluster: LocalCluster, fleet_on_cluster: tuple[FleetConfig, list[Service]]
) -> None:
    config, services = fleet_on_cluster
    stream = RedisKeys(config.redis_prefix).jobs(PROVIDER)
    victim = next(n for n in cluster.nodes if n.port == master_of(cluster, stream))
    statuses: list[int] = []
    failures: list[str] = []  # what broke the promise, first first
    stop = asyncio.Event()

    def happened() -> str:
        first = failures[0] if failures else "none"
        return f"statuses {statuses[-30:]} ({len(statuses)} in all); first failure: {first}"

    async with httpx.AsyncClient(base_url=config.edge_url, timeout=60) as edge:
        headers = auth(await register(edge))
        body = chat_body(PROVIDER, "deepseek-chat", "Hi [[sim latency_ms=150]]")

        async def client() -> None:
            while not stop.is_set() and not failures:
                try:
                    response = await edge.post("/api/v1/chat", json=body, headers=headers)
                except httpx.HTTPError as exc:  # a dropped connection or a hang: no answer
                    failures.append(f"{type(exc).__name__}: {exc!r}")
                    return
                if response.status_code != 200 and not clear_5xx(response):
                    failures.append(f"{response.status_code}: {response.text}")
                statuses.append(response.status_code)

        clients = [asyncio.create_task(client()) for _ in range(CLIENTS)]
        try:
            await until(lambda: len(statuses) >= 20 or failures, 60, "no load")
            assert not failures and set(statuses) == {200}, happened()
            victim.kill()
            await until(lambda: victim not in cluster.masters(), 60, "still a master")
            await until(lambda: len(cluster.masters()) == 3, 60, lambda: unpromoted(cluster))
            await until(cluster.ok, 60, "cluster not ok")
            assert master_of(cluster, stream) != victim.port
            # Recovered without a restart: ten answers in a row, all given once the cluster is
            # ok again (not the answers from before the kill).
            healed = len(statuses)
            await until(
                lambda: failures or statuses[healed:][-10:] == [200] * 10,
                60,
                lambda: f"not recovered: {happened()}",
            )
        finally:
            stop.set()
            # Every accepted request ends (an answer or its 5xx), none hangs past its deadline.
            try:
                ended = await asyncio.wait_for(
                    asyncio.gather(*clients, return_exceptions=True), timeout=60
                )
            except TimeoutError as hung:
                raise AssertionError(f"a request hung: {happened()}") from hung
        assert not failures, happened()
        assert not [e for e in ended if e is not None], ended
    assert all(s.process is not None and s.process.poll() is None for s in services)
