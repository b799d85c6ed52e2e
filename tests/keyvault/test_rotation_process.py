"""`python -m services.keyvault rotate` while the keyvault process serves, as the README's
three steps say: every key stays readable during and after the rotation (keys added meanwhile
too), every row ends sealed under the new master key, and the old one can then be dropped."""

import asyncio
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from services.fleet.infra import free_port
from services.fleet.processes import Service
from services.keyvault.main import MIGRATIONS, SERVICE
from shared.tokens import TokenSigner
from tests.databases import migrated_database
from tests.keyvault.conftest import DECRYPT_TOKEN, INTERNAL_TOKEN, master_key, user_headers
from tests.keyvault.test_keyvault import a_key, add, new_user, reveal

pytestmark = pytest.mark.timeout(180)

KEYS = 150  # more than one batch of the rotation (100)

Env = Callable[[str], dict[str, str]]


@pytest.fixture
def private_database(postgres_server: str) -> Iterator[str]:
    """A database of its own: a rotation re-seals every row of the table it runs on."""
    with migrated_database(postgres_server, "gw_kv", SERVICE, MIGRATIONS) as dsn:
        yield dsn


@pytest.fixture
def keyvault_env(private_database: str, redis_url: str, run_dir: Path, signer: TokenSigner) -> Env:
    """The keyvault's environment for a KEYVAULT_MASTER_KEYS value."""
    public_pem = signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    port, prefix = free_port(), f"gw-kvr-{secrets.token_hex(3)}"

    def env(master_keys: str) -> dict[str, str]:
        return {
            "DATABASE_URL": private_database,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": prefix,
            "DATA_DIR": str(run_dir / "keyvault-rotation"),
            "NODE_ENV": "test",
            "JWT_PUBLIC_KEY": public_pem,
            "KEYVAULT_MASTER_KEYS": master_keys,
            "KEYVAULT_SERVICE_TOKEN": DECRYPT_TOKEN,
            "INTERNAL_SERVICE_TOKEN": INTERNAL_TOKEN,
            "KEYVAULT_PORT": str(port),
            "LOG_LEVEL": "warning",
        }

    return env


@asynccontextmanager
async def serving(env: dict[str, str], run_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The keyvault process with `env`, started and ready; stopped by its PID at the end."""
    base = f"http://127.0.0.1:{env['KEYVAULT_PORT']}"
    service = Service(
        "keyvault-rotation",
        ["-m", "services.keyvault"],
        env,
        health_url=f"{base}/health/ready",
        log_path=run_dir / "keyvault-rotation.log",
    )
    try:
        service.start()
        await asyncio.to_thread(service.wait_healthy)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield client
    finally:
        service.stop()


async def key_versions(database_url: str) -> dict[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT key_version, count(*) AS n FROM provider_keys GROUP BY key_version"
        )
    finally:
        await conn.close()
    return {row["key_version"]: row["n"] for row in rows}


async def test_rotate_while_the_keyvault_serves(
    keyvault_env: Env, signer: TokenSigner, private_database: str, run_dir: Path
) -> None:
    old, new = f"1:{master_key()}", f"2:{master_key()}"
    user = new_user()
    plaintexts: dict[str, str] = {}
    async with serving(keyvault_env(old), run_dir) as kv:
        for _ in range(KEYS):
            key = a_key()
            plaintexts[(await add(kv, signer, user, key))["id"]] = key
    assert await key_versions(private_database) == {1: KEYS}

    # 1. The new master key listed after the old one; the keyvault restarted with both.
    both = keyvault_env(f"{old},{new}")
    async with serving(both, run_dir) as kv:
        rotating = True
        failures: list[str] = []
        during = 0

        async def use_the_keys() -> None:
            nonlocal during
            while rotating:
                for key_id, key in list(plaintexts.items())[::10]:
                    answer = await reveal(kv, key_id, user)
                    if answer.status_code != 200 or answer.json()["apiKey"] != key:
                        failures.append(f"{key_id}: {answer.status_code} {answer.text}")
                added_key = a_key()
                plaintexts[(await add(kv, signer, user, added_key))["id"]] = added_key
                during += 1

        users = asyncio.create_task(use_the_keys())
        try:
            # 2. Re-seal every key under the newest version while the service serves.
            rotation = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.keyvault", "rotate", env=both
            )
            assert await asyncio.wait_for(rotation.wait(), 120) == 0
        finally:
            rotating = False
            await users
        assert during > 0 and failures == []
        listed = await kv.get("/api/v1/keys", headers=user_headers(signer, user))
        assert {k["id"] for k in listed.json()["keys"]} == set(plaintexts)
    assert await key_versions(private_database) == {2: len(plaintexts)}

    # 3. The old version dropped: every key, old or added during the rotation, still opens.
    async with serving(keyvault_env(new), run_dir) as kv:
        for key_id, key in plaintexts.items():
            answer = await reveal(kv, key_id, user)
            assert answer.status_code == 200, answer.text
            assert answer.json()["apiKey"] == key
