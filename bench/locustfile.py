"""Locust users of `make loadtest`: chat requests, plain or streamed, over a provider mix.

`python -m bench.loadtest` runs this file in its own Locust process and sets its environment:
LOADTEST_TOKEN (the bearers, comma-separated: Locust users take turns), LOADTEST_MIX,
LOADTEST_STREAM_SHARE, LOADTEST_UPSTREAM_MS, LOADTEST_ANSWER_TOKENS (see
bench/loadtest_config.py) and LOADTEST_SUMMARY, the JSON file the final figures are written
to when Locust quits (its CSV files miss the last seconds). Locust monkey-patches the standard
library with gevent, so this file imports no asyncio, nor any module that does.

Each request is named `chat <provider>` or `stream <provider>`; a failure is named
`<status> <error type>` (`stream <error type>` for an error event in a 200 stream,
`connection <exception>` when no answer came), which the report groups by.
"""

import itertools
import json
import os
import random
from typing import Any

from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.exception import CatchResponseError
from locust.stats import StatsEntry, StatsError

from bench.mix import MODELS, parse_mix

MIX = parse_mix(os.environ.get("LOADTEST_MIX", "deepseek"))
PROVIDERS, WEIGHTS = list(MIX), list(MIX.values())
STREAM_SHARE = float(os.environ.get("LOADTEST_STREAM_SHARE", "0"))
# The simulator reads its behaviour from this directive; a real provider just sees text.
PROMPT = (
    f"Hi [[sim latency_ms={os.environ.get('LOADTEST_UPSTREAM_MS', '50')} "
    f"tokens={os.environ.get('LOADTEST_ANSWER_TOKENS', '20')}]]"
)
HEADERS = [
    {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for token in os.environ.get("LOADTEST_TOKEN", "").split(",")
]
_turns = itertools.count()
BODIES = {
    (provider, stream): json.dumps(
        {
            "provider": provider,
            "model": MODELS[provider],
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": stream,
        }
    )
    for provider in MIX
    for stream in (False, True)
}


def _error_type(payload: bytes) -> str:
    try:
        error = json.loads(payload)["error"]
        return str(error["type"])
    except (ValueError, KeyError, TypeError):
        return "no error envelope"


def problem(status: int, body: bytes, error: Exception | None, stream: bool) -> str | None:
    """Why an answer is a failure, or None."""
    if status == 0:
        return f"connection {type(error).__name__}"
    if status != 200:
        return f"{status} {_error_type(body)}"
    if not stream:
        return None
    for line in body.splitlines():
        if line.startswith(b"data:") and b'"error"' in line:
            return f"stream {_error_type(line[5:])}"
    if not body.rstrip().endswith(b"data: [DONE]"):
        return "stream unfinished"
    return None


class ChatUser(FastHttpUser):
    network_timeout = 120.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.headers = HEADERS[next(_turns) % len(HEADERS)]

    @task
    def chat(self) -> None:
        provider = random.choices(PROVIDERS, weights=WEIGHTS)[0]
        stream = random.random() < STREAM_SHARE
        with self.client.post(
            "/api/v1/chat",
            data=BODIES[(provider, stream)],
            headers=self.headers,
            name=f"{'stream' if stream else 'chat'} {provider}",
            catch_response=True,
        ) as response:
            # `error` is set only when no answer came.
            error = getattr(response, "error", None)
            failed = problem(response.status_code, response.content or b"", error, stream)
            if failed is None:
                response.success()
            else:
                response.failure(failed)


def _figures(entry: StatsEntry) -> dict[str, Any]:
    done = entry.num_requests > 0
    return {
        "name": entry.name,
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "rps": entry.total_rps,
        **{
            f"p{round(100 * p)}": entry.get_response_time_percentile(p) if done else None
            for p in (0.5, 0.9, 0.99)
        },
    }


def _message(error: StatsError) -> str:
    if isinstance(error.error, CatchResponseError):
        return str(error.error.args[0])
    return StatsError.parse_error(error.error)


def write_summary(environment: Environment, **kwargs: Any) -> None:
    stats = environment.stats
    assert stats is not None and environment.runner is not None
    entries = sorted(stats.entries.values(), key=lambda e: e.name)
    errors = [(e.name, _message(e), e.occurrences) for e in stats.errors.values()]
    errors += [
        ("(user code)", f"exception {row['msg']}", row["count"])
        for row in environment.runner.exceptions.values()
    ]
    summary = {"requests": [_figures(e) for e in [*entries, stats.total]], "errors": errors}
    with open(os.environ["LOADTEST_SUMMARY"], "w") as f:
        json.dump(summary, f)


events.quitting.add_listener(write_summary)  # type: ignore[no-untyped-call]
