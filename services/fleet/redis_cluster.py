"""A Redis Cluster on loopback ports, from the `redis-server` and `redis-cli` on `PATH`.

Used by the tests of cluster mode and by `make loadtest` to compare one master with three.
Every node is its own `redis-server` process in a folder of its own, stopped by its PID.
"""

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import redis

from services.fleet.infra import wait_for_port

_START_TIMEOUT = 30.0
_BUS_OFFSET = 10000  # a node's cluster bus listens on its port + 10000


class MissingBinaries(RuntimeError):
    """`redis-server` or `redis-cli` is not installed."""


def binaries() -> tuple[str, str]:
    """The `redis-server` and `redis-cli` to run, or `MissingBinaries` naming what lacks."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        found = (("redis-server", server), ("redis-cli", cli))
        missing = " and ".join(name for name, path in found if path is None)
        raise MissingBinaries(f"{missing} not found on PATH: a Redis Cluster cannot be started")
    return server, cli


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """`count` ports that are free together with their cluster bus ports."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 50000)
        if port not in ports and _is_free(port) and _is_free(port + _BUS_OFFSET):
            ports.append(port)
    return ports


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the node's log, for a failure message."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """SIGKILL, as a crash would: the node writes nothing on the way out."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class LocalCluster:
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A live node: the cluster client learns the others from it."""
        return next(n for n in self.nodes if n.process.poll() is None).url

    def masters(self) -> list[Node]:
        """The nodes now serving slots as masters (the live ones)."""
        found = []
        for node in self.nodes:
            if node.process.poll() is not None:
                continue
            with redis.Redis(port=node.port, socket_timeout=2) as client:
                if client.info("replication").get("role") == "master":
                    found.append(node)
        return found

    def ok(self) -> bool:
        """Whether every live node reports `cluster_state:ok`."""
        return all(_cluster_ok(n.port) for n in self.nodes if n.process.poll() is None)

    def replicas_synced(self) -> bool:
        """Whether every live replica has finished its sync with its master. A replica that
        never synced refuses to take over when its master dies (its data counts as too old for
        `cluster-replica-validity-factor`), so a cluster is only ready once they all have."""
        return all(_replica_synced(n.port) for n in self.nodes if n.process.poll() is None)

    def wait_ready(self, timeout: float = _START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.ok() and self.replicas_synced():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster is not ok and synced after {timeout} s")
            time.sleep(0.1)


def _cluster_ok(port: int) -> bool:
    with suppress(redis.RedisError), redis.Redis(port=port, socket_timeout=2) as client:
        return bool(client.cluster("info").get("cluster_state") == "ok")
    return False


def _replica_synced(port: int) -> bool:
    """True for a master, and for a replica whose link to its master is up."""
    with suppress(redis.RedisError), redis.Redis(port=port, socket_timeout=2) as client:
        replication = client.info("replication")
        role, link = replication.get("role"), replication.get("master_link_status")
        return bool(role == "master" or link == "up")
    return False


def _start_node(server: str, folder: Path, port: int) -> Node:
    folder.mkdir(parents=True, exist_ok=True)
    args = [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
        "--save",
        "",
        "--appendonly",
        "no",
        "--repl-diskless-sync-delay",  # a new replica syncs at once, not 5 s later
        "0",
        "--protected-mode",
        "no",
    ]
    log = folder / "redis.log"
    with log.open("ab") as output:
        process = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT)
    return Node(port, process, log)


@contextmanager
def local_cluster(folder: Path, masters: int = 3, replicas: int = 0) -> Iterator[LocalCluster]:
    """A cluster of `masters` masters, each with `replicas` replicas, all slots assigned;
    every node is stopped on the way out, also when the body fails."""
    server, cli = binaries()
    cluster = LocalCluster()
    try:
        for port in cluster_ports(masters * (1 + replicas)):
            cluster.nodes.append(_start_node(server, folder / str(port), port))
        for node in cluster.nodes:
            wait_for_port(node.port)
        addresses = [f"127.0.0.1:{n.port}" for n in cluster.nodes]
        if len(addresses) == 1:  # `--cluster create` wants three masters: one takes every slot
            create = [cli, "-p", str(cluster.nodes[0].port), "cluster", "addslotsrange", "0"]
            create.append("16383")
        else:
            create = [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(replicas)]
            create.append("--cluster-yes")
        subprocess.run(create, check=True, capture_output=True, timeout=_START_TIMEOUT)
        cluster.wait_ready()
        yield cluster
    finally:
        for node in cluster.nodes:
            node.stop()
