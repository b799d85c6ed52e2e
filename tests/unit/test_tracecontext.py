"""W3C trace context as the gateway accepts and passes it on (`shared.tracecontext`)."""

import pytest

from shared.tracecontext import accept_traceparent, child_of

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_context_is_continued() -> None:
    assert accept_traceparent(VALID) == VALID
    assert accept_traceparent(VALID.upper()) == VALID


@pytest.mark.parametrize(
    "invalid",
    [
        None,
        "",
        "garbage",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    ],
)
def test_anything_else_starts_a_new_trace(invalid: str | None) -> None:
    started = accept_traceparent(invalid)
    assert started != invalid
    assert accept_traceparent(started) == started


def test_the_next_hop_keeps_the_trace_and_names_itself_the_parent() -> None:
    child = child_of(VALID)
    assert child[:36] == VALID[:36] and child[52:] == VALID[52:]
    assert child[36:52] != VALID[36:52]
    assert accept_traceparent(child) == child
