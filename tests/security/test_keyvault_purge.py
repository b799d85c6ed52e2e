"""Expired validation copies of users' provider keys do not outlive their minutes.

Checking a key (`POST /api/v1/keys/validate`) stores a sealed copy for two minutes, and expired
copies were deleted only when the keyvault started. They are now purged every
`KEYVAULT_PURGE_INTERVAL` (services/keyvault/main.py).
"""

import asyncio
import base64
import os
import secrets
import time
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.keyvault.main import create_app
from services.keyvault.vault import Vault
from shared.settings import Settings


def _settings(database_url: str, redis_url: str, data_dir: Path) -> Settings:
    public_pem = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    values: dict[str, object] = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"gw-purge-{secrets.token_hex(3)}",
        "DATA_DIR": data_dir,
        "NODE_ENV": "test",
        "JWT_PUBLIC_KEY": public_pem,
        "KEYVAULT_MASTER_KEYS": "1:" + base64.b64encode(os.urandom(32)).decode(),
        "KEYVAULT_SERVICE_TOKEN": secrets.token_urlsafe(32),
        "INTERNAL_SERVICE_TOKEN": secrets.token_urlsafe(32),
        "KEYVAULT_PURGE_INTERVAL": "1s",
    }
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


async def test_expired_validation_copies_are_purged_while_the_keyvault_runs(
    database_url: str, redis_url: str, run_dir: Path
) -> None:
    app = create_app(_settings(database_url, redis_url, run_dir / "purge"))
    async with app.router.lifespan_context(app):
        vault: Vault = app.state.vault
        user = f"usr_purge_{secrets.token_hex(4)}"
        expired = await vault.stash(user, "deepseek", "sk-expired-" + secrets.token_hex(8))
        fresh = await vault.stash(user, "deepseek", "sk-fresh-" + secrets.token_hex(8))
        conn = await asyncpg.connect(database_url)
        try:
            # As if its two minutes had passed, long after the keyvault started.
            await conn.execute(
                "UPDATE provider_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
                expired,
            )
            query = "SELECT count(*) FROM provider_keys WHERE id = $1"
            deadline = time.monotonic() + 15
            while await conn.fetchval(query, expired):
                assert time.monotonic() < deadline, "the expired copy was never purged"
                await asyncio.sleep(0.2)
            assert await conn.fetchval(query, fresh) == 1
        finally:
            await conn.close()
