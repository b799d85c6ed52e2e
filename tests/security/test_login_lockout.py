"""Nobody can lock another user out of login (OWASP Authentication Cheat Sheet: lockouts slow
guessing without handing attackers a denial of service).

Five wrong passwords from anywhere, repeated every 15 minutes, once kept a user's right password
refused. Failures now count per (account, client) and per client (services/auth/throttle.py):
the attacker locks out only themselves, and a success gives back no failure counted at other
accounts.
"""

import secrets
from pathlib import Path

import httpx

from tests.security.support import PASSWORD, auth_service

PAIR_MAX, CLIENT_MAX = 5, 20


def _address() -> str:
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


async def _login(auth: httpx.AsyncClient, email: str, password: str, client: str) -> httpx.Response:
    return await auth.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": client},
    )


async def _register(auth: httpx.AsyncClient, email: str, client: str) -> None:
    body = {"email": email, "password": PASSWORD, "name": "Someone"}
    headers = {"X-Forwarded-For": client}
    response = await auth.post("/api/v1/auth/register", json=body, headers=headers)
    assert response.status_code == 201, response.text


async def test_an_attacker_cannot_lock_a_victim_out(
    database_url: str, redis_url: str, run_dir: Path
) -> None:
    settings = {"LOGIN_MAX_FAILURES": PAIR_MAX, "LOGIN_CLIENT_MAX_FAILURES": CLIENT_MAX}
    async with auth_service(database_url, redis_url, run_dir / "lockout", **settings) as auth:
        victim = f"victim-{secrets.token_hex(6)}@example.com"
        attacker, home = _address(), _address()
        await _register(auth, victim, home)
        statuses = []
        for _ in range(20):
            statuses.append((await _login(auth, victim, "guess-guess", attacker)).status_code)
        assert statuses == [401] * PAIR_MAX + [429] * (20 - PAIR_MAX)
        assert (await _login(auth, victim, PASSWORD, home)).status_code == 200
        elsewhere = await _login(auth, victim, PASSWORD, _address())
        assert elsewhere.status_code == 200
        refused = await _login(auth, victim, PASSWORD, attacker)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1


async def test_logging_into_your_own_account_gives_back_nothing_counted_at_others(
    database_url: str, redis_url: str, run_dir: Path
) -> None:
    settings = {"LOGIN_MAX_FAILURES": PAIR_MAX, "LOGIN_CLIENT_MAX_FAILURES": CLIENT_MAX}
    async with auth_service(database_url, redis_url, run_dir / "giveback", **settings) as auth:
        attacker = _address()
        own = f"own-{secrets.token_hex(6)}@example.com"
        await _register(auth, own, _address())
        victims = [f"v{i}-{secrets.token_hex(4)}@example.com" for i in range(CLIENT_MAX)]
        for victim in victims[:-1]:
            assert (await _login(auth, victim, "guess-guess", attacker)).status_code == 401
        for _ in range(5):
            assert (await _login(auth, own, PASSWORD, attacker)).status_code == 200
        assert (await _login(auth, victims[-1], "guess-guess", attacker)).status_code == 401
        assert (await _login(auth, victims[0], "guess-guess", attacker)).status_code == 429
        assert (await _login(auth, own, PASSWORD, attacker)).status_code == 429
