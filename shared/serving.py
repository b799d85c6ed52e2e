"""How every HTTP service of the fleet is served: uvicorn with uvloop and httptools, our own
JSON logging instead of uvicorn's, and no access log (the audit log records requests).
uvicorn's own proxy-header handling is off: who the client is is decided in one place, by
`TRUSTED_PROXIES` (shared/client_address.py)."""

from typing import Any

import uvicorn
from fastapi import FastAPI


def serve(app: FastAPI | str, *, host: str, port: int, **options: Any) -> None:
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        **options,
    )
