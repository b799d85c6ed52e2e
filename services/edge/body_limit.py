"""Refuses request bodies over `MAX_BODY_BYTES` with 413, whether announced or streamed.

An announced body (`Content-Length`) is refused before the app runs. A streamed one (chunked,
no length) is counted as it arrives: once past the limit the 413 is sent from here and the app
is told the client left, so whatever it answers then (FastAPI turns a body it could not read
into a 400) is dropped instead of replacing the 413.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import PayloadTooLarge, error_body


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"Request body is larger than {self.max_bytes} bytes",
            details={"max_bytes": self.max_bytes},
        )

    async def refuse(self, scope: Scope, send: Send) -> None:
        trace = scope.get("state", {}).get("trace_id", "")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": error_body(self.too_large(), trace)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            await self.refuse(scope, send)
            return
        seen = 0
        started = refused = False

        async def counting_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                if started:  # the app answered before reading all of it: nothing to replace
                    raise self.too_large()
                refused = True
                await self.refuse(scope, send)
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:  # after a 413 the app's troubles with the cut body do not matter
                raise
