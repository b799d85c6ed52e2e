"""A request refused after its caller was identified still counts against the caller's limit.

The body is validated after the caller is authenticated, and a route may refuse a request
before admitting it (a provider an API key may not use, a model that does not exist). Such a
4xx is counted against the caller's request limits like an admitted request, so bad requests
are no cheaper to send in bulk than good ones. 401s (nobody identified) and 429s (refused by
the limits themselves) are not counted.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.edge.auth import Principal
from services.edge.deps import Components

_NOT_CHARGED = (401, 429)


class ChargeRefusals:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def charging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status: int = message["status"]
                if 400 <= status < 500 and status not in _NOT_CHARGED:
                    await _charge(scope)
            await send(message)

        await self.app(scope, receive, charging_send)


async def _charge(scope: Scope) -> None:
    state = scope.get("state", {})
    caller = state.get("caller")
    if isinstance(caller, Principal) and not state.get("admitted"):
        edge: Components = scope["app"].state.edge
        await edge.gate.charge(caller)
