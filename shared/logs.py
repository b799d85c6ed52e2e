"""Structured JSON logs on stdout, with the trace id (and W3C `traceparent`), user id and
provider of the current request or job."""

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

import orjson

trace_id_var: ContextVar[str | None] = ContextVar("trace_id", default=None)
traceparent_var: ContextVar[str | None] = ContextVar("traceparent", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)
provider_var: ContextVar[str | None] = ContextVar("provider", default=None)


# What a secret looks like here: provider and gateway keys, bearer tokens, JWTs.
_SECRET = re.compile(
    r"(?:sk|xai|nvapi|pplx|gw)[-_][A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}|eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"
)


def redact(text: str) -> str:
    """The text with anything shaped like a secret replaced: a last line of defence, since
    nothing should log secrets in the first place."""
    return _SECRET.sub("[redacted]", text)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, var in (
            ("trace_id", trace_id_var),
            ("traceparent", traceparent_var),
            ("user_id", user_id_var),
            ("provider", provider_var),
        ):
            value = var.get()
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


def configure_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
