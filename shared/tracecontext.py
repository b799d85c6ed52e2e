"""W3C Trace Context (`traceparent`): accepted from the caller, carried with the job, sent on.

`00-<trace id: 32 hex>-<parent id: 16 hex>-<flags: 2 hex>`. A request that brings a valid one
continues its trace; any other starts one. Each hop names itself as the parent of the next: the
edge passes its context to the worker inside the job, and the worker calls the provider with
the same trace id and a parent id of its own (`child_of`). The context is logged with the
request's trace id.
"""

import re
import secrets

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE, _ZERO_PARENT = "0" * 32, "0" * 16


def accept_traceparent(candidate: str | None) -> str:
    """The caller's `traceparent` when it is valid (version 00 and any later one but ff, ids
    not all zeros), else a new trace's."""
    match = _TRACEPARENT.match(candidate.strip().lower()) if candidate else None
    if match is None:
        return new_traceparent()
    version, trace, parent, flags = match.groups()
    if version == "ff" or trace == _ZERO_TRACE or parent == _ZERO_PARENT:
        return new_traceparent()
    return f"00-{trace}-{parent}-{flags}"


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def child_of(traceparent: str) -> str:
    """The context for the next hop: the same trace and flags, this hop as the parent."""
    return f"{traceparent[:36]}{secrets.token_hex(8)}{traceparent[52:]}"
