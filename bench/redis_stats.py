"""What a fleet's Redis server did: commands by name (`INFO commandstats`, the commands scripts
run included) and the CPU it spent (`INFO cpu`), read before and after the gateway rounds."""

from dataclasses import dataclass, field

from redis import Redis, RedisCluster


@dataclass(frozen=True)
class RedisWork:
    calls: dict[str, int] = field(default_factory=dict)  # command -> calls
    cpu_seconds: float = 0.0

    def __sub__(self, earlier: "RedisWork") -> "RedisWork":
        calls = {
            name: count - earlier.calls.get(name, 0)
            for name, count in self.calls.items()
            if count > earlier.calls.get(name, 0)
        }
        return RedisWork(calls, self.cpu_seconds - earlier.cpu_seconds)

    def __add__(self, other: "RedisWork") -> "RedisWork":
        calls = dict(self.calls)
        for name, count in other.calls.items():
            calls[name] = calls.get(name, 0) + count
        return RedisWork(calls, self.cpu_seconds + other.cpu_seconds)


def redis_work(url: str) -> RedisWork:
    with Redis.from_url(url) as client:
        stats = client.info("commandstats")
        cpu = client.info("cpu")
    calls = {
        name.removeprefix("cmdstat_"): int(values["calls"])
        for name, values in stats.items()
        if isinstance(values, dict)
    }
    return RedisWork(calls, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]))


def masters_work(url: str, cluster: bool) -> list[RedisWork]:
    """`redis_work` of each master of a cluster (`url` names any node), or of the one server."""
    if not cluster:
        return [redis_work(url)]
    with RedisCluster.from_url(url) as client:
        return [redis_work(f"redis://{n.host}:{n.port}/0") for n in client.get_primaries()]


def spread(work: list[RedisWork], requests: int) -> str:
    """Commands and CPU per request over every master, and the busiest master's share."""
    calls = sum(sum(w.calls.values()) for w in work)
    cpu = sum(w.cpu_seconds for w in work)
    busiest = max(w.cpu_seconds for w in work) / cpu if cpu else 0.0
    per = max(requests, 1)
    return (
        f"{calls / per:.1f} commands and {cpu * 1e6 / per:.0f} µs of CPU per request over "
        f"{len(work)} master(s); the busiest master did {busiest:.0%} of that CPU"
    )
