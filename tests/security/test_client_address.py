"""Client addresses behind proxies: `TRUSTED_PROXIES` says whose X-Forwarded-For (or Forwarded)
is believed, in the edge and in auth alike (shared/client_address.py).

Behind an ingress every client once was the ingress pod: ten logins a minute were shared by
everyone, and twenty wrong passwords locked everyone out. Auth believed the first
X-Forwarded-For hop from any peer. Now each client behind a trusted proxy has its own limits,
and a client's own header, sent directly or through a proxy, changes nothing.
"""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from services.fleet.plan import FleetConfig
from shared.client_address import TrustedProxies, forwarding_headers, parse_networks
from tests.e2e.helpers import running_edge
from tests.security.support import auth_service

PROXIES = TrustedProxies(parse_networks("10.0.0.0/8, 2001:db8:ff::/48"), "x-forwarded-for")


def _headers(name: str, *values: str) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), v.encode()) for v in values]


def _address() -> str:
    return f"198.51.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # not a proxy: its header is ignored
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["1.2.3.4, 198.51.100.1"], "198.51.100.1"),  # the client's own part
        ("10.0.0.2", ["1.2.3.4", "198.51.100.1, 10.0.0.7"], "198.51.100.1"),  # two lines
        ("10.0.0.2", ["10.0.0.5, 10.0.0.7"], "10.0.0.5"),  # proxies all the way
        ("10.0.0.2", ["198.51.100.1, junk"], "10.0.0.2"),  # not an address: stop there
        ("10.0.0.2", ["198.51.100.1:4711"], "198.51.100.1"),
        ("10.0.0.2", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("::ffff:10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("2001:db8:ff::3", ["2001:db8::1"], "2001:db8::1"),
        ("10.0.0.2", [], "10.0.0.2"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str, forwarded_for: list[str], client: str
) -> None:
    assert PROXIES.client(peer, _headers("x-forwarded-for", *forwarded_for)) == client


def test_the_forwarded_header_is_read_only_when_configured() -> None:
    forwarded = TrustedProxies(parse_networks("10.0.0.0/8"), "forwarded")
    header = _headers("forwarded", 'for=1.2.3.4;proto=https, for="[2001:db8::1]:80";by=x')
    assert forwarded.client("10.0.0.2", header) == "2001:db8::1"
    assert forwarded.client("10.0.0.2", _headers("x-forwarded-for", "1.2.3.4")) == "10.0.0.2"
    assert PROXIES.client("10.0.0.2", header) == "10.0.0.2"
    for client in ("198.51.100.1", "2001:db8::1"):
        headers = forwarding_headers(client).items()
        encoded = [(k.encode(), v.encode()) for k, v in headers]
        assert forwarded.client("10.0.0.2", encoded) == client
        assert PROXIES.client("10.0.0.2", encoded) == client


async def _failed_logins(client: httpx.AsyncClient, *forwarded_for: str) -> list[int]:
    statuses = []
    for hop in forwarded_for:
        body = {"email": f"x-{secrets.token_hex(4)}@example.com", "password": "wrong-wrong"}
        response = await client.post(
            "/api/v1/auth/login", json=body, headers={"X-Forwarded-For": hop}
        )
        statuses.append(response.status_code)
    return statuses


async def test_auth_ignores_forwarded_for_from_a_peer_it_does_not_trust(
    database_url: str, redis_url: str, run_dir: Path
) -> None:
    settings = {"TRUSTED_PROXIES": "10.0.0.0/8", "LOGIN_CLIENT_MAX_FAILURES": 3}
    async with auth_service(database_url, redis_url, run_dir / "xff-untrusted", **settings) as auth:
        forged = [_address() for _ in range(4)]
        assert await _failed_logins(auth, *forged) == [401, 401, 401, 429]


async def test_auth_tells_clients_behind_a_trusted_peer_apart(
    database_url: str, redis_url: str, run_dir: Path
) -> None:
    settings = {"LOGIN_CLIENT_MAX_FAILURES": 3}
    async with auth_service(database_url, redis_url, run_dir / "xff-trusted", **settings) as auth:
        alice, bob = _address(), _address()
        # Alice's own X-Forwarded-For part (left of what the proxy appended) is ignored.
        hops = [alice, f"{_address()}, {alice}", f"{_address()}, {alice}", alice]
        assert await _failed_logins(auth, *hops) == [401, 401, 401, 429]
        assert await _failed_logins(auth, bob) == [401]


@asynccontextmanager
async def calling_from(source: str, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connections come from `source` (any 127.x address is this host)."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=30) as client:
        yield client


async def test_through_the_edge_a_clients_own_forwarded_for_cannot_escape_its_auth_limit(
    fleet: FleetConfig,
) -> None:
    """A real edge process of the fleet, behind a "proxy" at 127.0.0.3 (the only trusted
    one), three auth requests a minute per client; auth behind it is the fleet's."""
    settings = {"AUTH_RATE_LIMIT_MAX": "3", "TRUSTED_PROXIES": "127.0.0.3/32"}
    with running_edge(fleet, **settings) as url:
        async with calling_from("127.0.0.3", url) as proxy:
            alice, bob = _address(), _address()
            forged = [alice, f"{_address()}, {alice}", f"{_address()}, {alice}", alice]
            assert await _failed_logins(proxy, *forged) == [401, 401, 401, 429]
            assert await _failed_logins(proxy, bob) == [401]
        async with calling_from("127.0.0.2", url) as direct:
            forged = [_address() for _ in range(4)]
            assert await _failed_logins(direct, *forged) == [401, 401, 401, 429]
