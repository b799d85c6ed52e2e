"""The local Redis Cluster the tests and `make loadtest` start is ready for a failover as soon
as it is handed out: a master killed at once is replaced by its replica."""

import time
from pathlib import Path

import pytest

from services.fleet.redis_cluster import MissingBinaries, binaries, local_cluster


def test_a_master_killed_right_after_start_is_replaced_by_its_replica(run_dir: Path) -> None:
    try:
        binaries()
    except MissingBinaries as missing:
        pytest.skip(str(missing))
    with local_cluster(run_dir / "fresh-cluster", masters=3, replicas=1) as cluster:
        victim = cluster.masters()[0]
        victim.kill()
        deadline = time.monotonic() + 30
        while not (len(cluster.masters()) == 3 and cluster.ok()):
            if time.monotonic() > deadline:
                logs = "\n".join(n.log_tail() for n in cluster.nodes)
                raise AssertionError(f"no replica took over after 30 s; the logs end:\n{logs}")
            time.sleep(0.2)
        assert victim not in cluster.masters()
