"""Identifier formats: trace ids (`req_…`), job ids and prefixed object ids (`usr_…`)."""

import re
import secrets

_TRACE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def new_trace_id() -> str:
    return new_id("req")


def accept_trace_id(candidate: str | None) -> str:
    """An incoming `X-Request-ID` if it is a sane token, else a fresh trace id."""
    if candidate and _TRACE_ID.match(candidate):
        return candidate
    return new_trace_id()
