"""`python -m services.audit rekey`: re-chains the audit log under the newest `AUDIT_HMAC_KEYS`
version. Run it once after upgrading to a keyed chain (rows written before have no key), and
after adding a key version, before removing the old one.

The chain is checked first as it stands (rows not keyed yet by their SHA-256, the others by
their key, and the head): a broken chain is never re-chained, which would make tampering look
intact; the command names the first row that does not match instead. Everything happens in
one transaction under the chain's lock: writers wait, readers see the chain before or after.
It is deliberately not automatic: a table rewritten without keys by someone who can write it
must stay visible to `verify`, not be re-chained at the next start.
"""

import asyncpg

from services.audit.chain import GENESIS, head_mac, row_hash, walk
from services.audit.chain_keys import ChainKeys
from services.audit.repository import CHAIN_LOCK, UPSERT_HEAD

_PAGE = 1000
_UPDATE = "UPDATE audit_log SET key_version = $2, prev_hash = $3, row_hash = $4 WHERE seq = $1"


class ChainBroken(RuntimeError):
    """The chain does not check out as it stands: it is not re-chained."""


async def rekey(conn: asyncpg.Connection, keys: ChainKeys) -> int:
    """Re-chains every row from the first one not under the newest key; how many changed."""
    newest = keys.newest
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
        stale = await conn.fetchval(
            "SELECT min(seq) FROM audit_log WHERE key_version IS DISTINCT FROM $1", newest
        )
        if stale is None:
            return 0
        verdict = await walk(conn, keys, legacy=True)
        if verdict.broken is not None:
            raise ChainBroken(verdict.broken.describe())
        previous = await conn.fetchval("SELECT row_hash FROM audit_log WHERE seq = $1", stale - 1)
        prev, after, changed = previous or GENESIS, stale - 1, 0
        while rows := await conn.fetch(
            "SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2", after, _PAGE
        ):
            updates = []
            for row in rows:
                digest = row_hash(keys, newest, prev, row)
                updates.append((row["seq"], newest, prev, digest))
                prev, after = digest, row["seq"]
            await conn.executemany(_UPDATE, updates)
            changed += len(updates)
        await conn.execute(UPSERT_HEAD, after, prev, newest, head_mac(keys, newest, after, prev))
    return changed
