"""The jti deny-list in Redis: logout and refresh rotation write it, the edge and we read it."""

import time

from redis.asyncio import Redis

from services.auth.redis_errors import redis_available
from shared.redis_keys import RedisKeys
from shared.tokens import Claims


class Revocations:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys

    async def revoke(self, claims: Claims) -> bool:
        """Deny the token for the rest of its life; False if it already was (SET NX makes
        check-and-revoke one step, so two concurrent refreshes cannot both succeed)."""
        ttl = max(1, claims.exp - int(time.time()))
        async with redis_available():
            created = await self.redis.set(
                self.keys.revoked(claims.sub, claims.jti), "1", ex=ttl, nx=True
            )
        return bool(created)

    async def is_revoked(self, claims: Claims) -> bool:
        async with redis_available():
            return bool(await self.redis.exists(self.keys.revoked(claims.sub, claims.jti)))

    async def ping(self) -> None:
        async with redis_available():
            await self.redis.ping()


class KeyCache:
    """The edge's cache of resolved API keys; we only ever drop entries from it."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys

    async def forget(self, key_hashes: list[str]) -> None:
        if not key_hashes:
            return
        async with redis_available():
            await self.redis.delete(*(self.keys.api_key(h) for h in key_hashes))
