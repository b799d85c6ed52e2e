"""Provider simulator: stands in for the providers' HTTP APIs (docs/providers.md), one process.

Routes: `/anthropic/v1/messages`, `/anthropic/v1/messages/count_tokens`, `/anthropic/v1/models`;
per OpenAI-dialect provider P (see `registry.py`): `/P/chat/completions`, `/P/models` (each
also under `/P/v1/...`) plus provider extras such as `/deepseek/user/balance`. Control:
`GET /health`, `GET /_sim/requests?trace_id=X` (records whose `x-request-id` is X, newest last),
`DELETE /_sim/requests`.

Replies are deterministic: the words come from a hash of the messages (and Anthropic `system`),
one word = one token = one stream chunk; prompt tokens = whitespace-separated words of all
message and system text. `max_tokens` caps the reply (finish `length` / `max_tokens`).

Directives, written anywhere in the last user message: `[[sim key=value ...]]`
    tokens=N            reply length in words (default `--tokens`)
    reasoning_tokens=N  reasoning words for reasoning models (default `--reasoning-tokens`)
    latency_ms=N        delay before the response or first chunk (default `--latency-ms`)
    chunk_delay_ms=N    delay between stream chunks (default `--chunk-delay-ms`)
    fail=401|429|500|503|529
                        that status with the provider's own error body; 429 (and Anthropic 529)
                        carry `retry-after: 1`
    fail=disconnect     send a few chunks (or half the JSON body), then drop the connection
    fail=midstream      streams: a few chunks, then the provider's mid-stream error (Anthropic
                        `event: error` overloaded_error; OpenAI dialect a chunk with a top-level
                        `error`, then `[DONE]`); non-streaming: Anthropic 529, OpenAI dialect 503
An API key containing `fail-401`, `fail-429` or `fail-500` acts like the matching `fail=`
directive (and wins over it).
"""
