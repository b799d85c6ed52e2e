"""Log lines are JSON with the request's context, and never carry anything shaped like a secret."""

import logging

import orjson
import pytest

from shared.logs import JsonFormatter, trace_id_var, traceparent_var, user_id_var

SECRETS = [
    "sk-ant-api03-abcdefghijklmnop",
    "sk-1234567890abcdef",
    "xai-abcdefghijkl",
    "nvapi-abcdefghijkl",
    "pplx-abcdefghijkl",
    "hf_abcdefghijklmnop",
    "gw_abcdefghijklmnopqrstuv",
    "Bearer abcdefghijklmnopqrst",
    "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c3IifQ.c2lnbmF0dXJl",
]


def formatted(message: str, *args: object) -> dict[str, object]:
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, message, args, None)
    parsed: dict[str, object] = orjson.loads(JsonFormatter("edge").format(record))
    return parsed


@pytest.mark.parametrize("secret", SECRETS)
def test_secrets_are_redacted(secret: str) -> None:
    line = formatted("upstream said: %s is invalid", secret)
    assert secret not in str(line)
    assert "[redacted]" in str(line["msg"])


def test_lines_carry_service_trace_and_user() -> None:
    trace, user = trace_id_var.set("req_abc"), user_id_var.set("usr_1")
    try:
        line = formatted("hello %s", "world")
    finally:
        trace_id_var.reset(trace)
        user_id_var.reset(user)
    assert line["msg"] == "hello world"
    assert (line["service"], line["trace_id"], line["user_id"]) == ("edge", "req_abc", "usr_1")


def test_lines_carry_the_w3c_trace_context() -> None:
    context = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    token = traceparent_var.set(context)
    try:
        line = formatted("hello")
    finally:
        traceparent_var.reset(token)
    assert line["traceparent"] == context
    assert "traceparent" not in formatted("hello")
