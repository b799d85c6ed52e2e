"""bcrypt hashing off the event loop, and a dummy check that makes unknown emails cost the same."""

import asyncio

import bcrypt

MAX_PASSWORD_BYTES = 72  # bcrypt ignores (bcrypt>=5: rejects) anything longer


class PasswordHasher:
    def __init__(self, rounds: int, dummy_hash: bytes) -> None:
        self.rounds = rounds
        self._dummy_hash = dummy_hash

    @classmethod
    async def create(cls, rounds: int) -> "PasswordHasher":
        dummy = await asyncio.to_thread(bcrypt.hashpw, b"dummy-password", bcrypt.gensalt(rounds))
        return cls(rounds, dummy)

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self.rounds)
        hashed = await asyncio.to_thread(bcrypt.hashpw, password.encode(), salt)
        return hashed.decode("ascii")

    async def check(self, password: str, password_hash: str | None) -> bool:
        """True if `password` matches; with no hash (unknown email) take as long, then False."""
        raw = password.encode()
        if password_hash is None or len(raw) > MAX_PASSWORD_BYTES:
            await asyncio.to_thread(bcrypt.checkpw, raw[:MAX_PASSWORD_BYTES], self._dummy_hash)
            return False
        try:
            return await asyncio.to_thread(bcrypt.checkpw, raw, password_hash.encode("ascii"))
        except ValueError:  # a corrupt stored hash is a failed login, not a 500
            return False
