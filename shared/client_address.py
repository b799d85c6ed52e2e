"""Who the client is: the peer, or, when the peer is a trusted proxy (`TRUSTED_PROXIES`), the
address that proxy says it forwarded for (`TRUSTED_PROXY_HEADER`: X-Forwarded-For or RFC 7239
Forwarded).

The header is read from the right, the hop nearest to us first: each address that is itself a
trusted proxy is passed over, and the first one that is not is the client. Everything left of
it was written by the client and is never believed; a hop that is not an address ends the walk
at the last trusted one. Only the header your proxies write may be configured: a client can
send the other one, and no proxy would correct it.

`ClientAddress` puts the result in the ASGI scope's `client`, so every reader of a client
address (rate limits per client, login throttling) sees the same one. Services behind the edge
trust the edge the same way (it forwards the client it resolved in both headers).
"""

import ipaddress
from collections.abc import Iterable
from typing import Literal

from starlette.types import ASGIApp, Receive, Scope, Send

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ProxyHeader = Literal["x-forwarded-for", "forwarded"]


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs (or single addresses); ValueError names a bad one."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"not an address or CIDR: {item[:64]!r}") from None
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    """An address as proxies write one (`1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:80`,
    `2001:db8::1`), IPv4-mapped IPv6 as IPv4; None for anything else (`unknown`, `_hidden`)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forwarded_for(value: str) -> Iterable[str]:
    """The `for=` of each element of a Forwarded header, in order (`?` for one without)."""
    for element in value.split(","):
        pairs = (pair.strip().partition("=") for pair in element.split(";"))
        yield next((v for k, _, v in pairs if k.strip().lower() == "for"), "?")


class TrustedProxies:
    def __init__(self, networks: tuple[Network, ...], header: ProxyHeader) -> None:
        self.networks = networks
        self.header = header.encode()

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def hops(self, headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
        """The addresses the header names, leftmost first (all its lines, in order)."""
        values = [v.decode("latin-1") for k, v in headers if k.lower() == self.header]
        if self.header == b"forwarded":
            return [hop for value in values for hop in _forwarded_for(value)]
        return [hop for value in values for hop in value.split(",")]

    def client(self, peer: str, headers: Iterable[tuple[bytes, bytes]]) -> str:
        address = parse_address(peer)
        if address is None or not self.trusts(address):
            return peer
        for hop in reversed(self.hops(headers)):
            named = parse_address(hop)
            if named is None:
                break
            address = named
            if not self.trusts(named):
                break
        return str(address)


def forwarding_headers(client: str) -> dict[str, str]:
    """What a trusted service (the edge) tells the next one of its client, in both headers."""
    address = parse_address(client)
    named = f'"[{address}]"' if isinstance(address, ipaddress.IPv6Address) else client
    return {"x-forwarded-for": client, "forwarded": f"for={named}"}


class ClientAddress:
    """Sets the scope's `client` to the address `proxies` resolve for the request."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] == "http" and peer:
            host, port = peer
            client = self.proxies.client(host, scope["headers"])
            if client != host:
                scope["client"] = (client, port)
        await self.app(scope, receive, send)
