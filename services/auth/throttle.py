"""Login and registration throttling per (account, client) and per client, counted in Redis over
a fixed window (the OWASP Authentication Cheat Sheet's advice against both guessing and
lockout abuse).

`LOGIN_MAX_FAILURES` attempts at one account from one client, and `LOGIN_CLIENT_MAX_FAILURES`
from one client at any accounts, within `LOGIN_LOCKOUT`. There is no lock on an account as
such: a stranger failing at a victim's email locks out only themselves, and the victim's
right password from their own address goes through at once. Guessing one account from many
addresses is slowed per address (and by bcrypt's cost), not stopped.

Every attempt counts before the password is checked, so parallel guesses cannot slip past
the limit; a success forgets that account's failures from that client and gives back only the
attempt it counted, never failures at other accounts. Keys hold hashes of the email and the
address: no PII in key names.
"""

import hashlib
import math

from redis.asyncio import Redis

from services.auth.redis_errors import redis_available
from shared.errors import RateLimitError
from shared.redis_keys import RedisKeys
from shared.settings import Settings

TOO_MANY = "Too many failed attempts, try again later"

# DECR only a live counter: after it expired, a bare DECR would leave -1 without a TTL.
_GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
"""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class LoginThrottle:
    def __init__(self, redis: Redis, keys: RedisKeys, settings: Settings) -> None:
        self.redis = redis
        self.keys = keys
        self.window = settings.login_lockout.whole_seconds
        self.pair_max = settings.login_max_failures
        self.client_max = settings.login_client_max_failures

    def pair_key(self, email: str, client: str) -> str:
        return self.keys.login_failures(_digest(client), f"pair:{_digest(email.lower(), client)}")

    def client_key(self, client: str) -> str:
        return self.keys.login_failures(_digest(client), "client")

    async def attempt(self, email: str, client: str) -> None:
        """Count an attempt; RateLimitError when this client is over its limit, at this
        account or at all."""
        subjects = [
            (self.pair_key(email, client), self.pair_max),
            (self.client_key(client), self.client_max),
        ]
        async with redis_available(), self.redis.pipeline(transaction=True) as pipe:
            for key, _ in subjects:
                pipe.set(key, 0, ex=self.window, nx=True)
                pipe.incr(key)
                pipe.pttl(key)
            results = await pipe.execute()
        waits = [
            max(1, math.ceil(int(results[i * 3 + 2]) / 1000))
            for i, (_, limit) in enumerate(subjects)
            if int(results[i * 3 + 1]) > limit
        ]
        if waits:
            raise RateLimitError(TOO_MANY, retry_after=max(waits))

    async def succeeded(self, email: str, client: str) -> None:
        async with redis_available():
            await self.redis.delete(self.pair_key(email, client))
            await self.redis.eval(_GIVE_BACK, 1, self.client_key(client))
