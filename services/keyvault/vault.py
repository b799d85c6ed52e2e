"""What the keyvault does with keys: seal and store, list masked, reveal to a worker, rotate."""

import logging
from datetime import UTC, datetime

from redis.asyncio import Redis

from services.keyvault.crypto import KeyUnreadable, MasterKeys, associated_data, mask
from services.keyvault.repository import KeyRepository, KeyRow
from shared.errors import NotFoundError
from shared.ids import new_id
from shared.redis_keys import RedisKeys

log = logging.getLogger(__name__)

ROTATION = "rotation"  # the audit log's actor for the decrypts of `rotate`

VALIDATION_COPY_TTL = 120


class Vault:
    def __init__(
        self, repo: KeyRepository, master: MasterKeys, redis: Redis, keys: RedisKeys
    ) -> None:
        self.repo = repo
        self.master = master
        self.redis = redis
        self.keys = keys

    def _seal(self, user_id: str, provider: str, name: str, api_key: str) -> KeyRow:
        key_id = new_id("key")
        sealed = self.master.seal(api_key, associated_data(user_id, provider, key_id))
        return KeyRow(key_id, user_id, provider, name, mask(api_key), sealed, datetime.now(UTC))

    async def add(self, user_id: str, provider: str, name: str, api_key: str) -> KeyRow:
        row = self._seal(user_id, provider, name, api_key)
        await self.repo.insert(row)
        await self._publish_choice(user_id, provider)
        return row

    async def stash(self, user_id: str, provider: str, api_key: str) -> str:
        """A short-lived sealed copy of a key, so a worker can validate it by id."""
        row = self._seal(user_id, provider, "validation", api_key)
        await self.repo.insert(row, ttl_seconds=VALIDATION_COPY_TTL)
        return row.id

    async def list(self, user_id: str) -> list[KeyRow]:
        return await self.repo.list_for_user(user_id)

    async def get(self, key_id: str, user_id: str) -> KeyRow:
        row = await self.repo.get(key_id, user_id)
        if row is None:
            raise NotFoundError("Key not found", details={"id": key_id})
        return row

    async def delete(self, key_id: str, user_id: str) -> None:
        row = await self.repo.delete(key_id, user_id)
        if row is None:
            raise NotFoundError("Key not found", details={"id": key_id})
        await self._publish_choice(user_id, row.provider)

    async def reveal(
        self, key_id: str, user_id: str, *, actor: str, trace_id: str | None
    ) -> tuple[KeyRow, str]:
        """The key row and its plaintext, for a worker; every attempt is audited."""
        row = await self.get(key_id, user_id)
        try:
            plaintext = self._open(row)
        except KeyUnreadable:
            await self.repo.audit(
                key_id, user_id, actor=actor, action="decrypt_failed", trace_id=trace_id
            )
            raise
        await self.repo.audit(key_id, user_id, actor=actor, action="decrypt", trace_id=trace_id)
        return row, plaintext

    def _open(self, row: KeyRow) -> str:
        return self.master.open(row.sealed, associated_data(row.user_id, row.provider, row.id))

    async def _publish_choice(self, user_id: str, provider: str) -> None:
        """Tell the edge which of the user's keys (the newest) to name in jobs for `provider`."""
        newest = await self.repo.newest_for(user_id, provider)
        name = self.keys.own_keys(user_id)
        if newest is None:
            await self.redis.hdel(name, provider)
        else:
            await self.redis.hset(name, provider, newest.id)

    async def rotate(self, batch: int = 100) -> int:
        """Re-seal every row under the newest master key; returns how many rows changed."""
        changed, after = 0, ""
        while rows := await self.repo.sealed_with_older_versions(self.master.newest, after, batch):
            for row in rows:
                try:
                    plaintext = self._open(row)
                except KeyUnreadable as exc:
                    log.error("key %s cannot be re-sealed: %s", row.id, exc.message)
                    await self.repo.audit(
                        row.id, row.user_id, actor=ROTATION, action="decrypt_failed", trace_id=None
                    )
                    continue
                await self.repo.audit(
                    row.id, row.user_id, actor=ROTATION, action="decrypt", trace_id=None
                )
                aad = associated_data(row.user_id, row.provider, row.id)
                changed += await self.repo.reseal(
                    row.id, row.sealed, self.master.seal(plaintext, aad)
                )
            after = rows[-1].id
        log.info("re-sealed %d keys under master key version %d", changed, self.master.newest)
        return changed
