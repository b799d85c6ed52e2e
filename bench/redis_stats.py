"""What a fleet's Redis server did: commands by name (`INFO commandstats`, the commands scripts
run included) and the CPU it spent (`INFO cpu`), read before and after the gateway rounds."""

from dataclasses import dataclass, field

from redis import Redis


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
