"""Provider simulator: stands in for the providers' HTTP APIs (docs/providers.md), one process.

Routes (every OpenAI-dialect route also answers under `/P/v1/...`):
    /anthropic/v1/messages, /anthropic/v1/messages/count_tokens, /anthropic/v1/models
    /P/chat/completions, /P/models for P in deepseek, xai, openrouter, litellm, nvidia_nim,
        perplexity, huggingface (`registry.py` holds each profile and its quirks)
    /deepseek/user/balance, /xai/api-key, /openrouter/key (and /auth/key), /litellm/key/info
    /litellm/embeddings, /openrouter/embeddings, /nvidia_nim/embeddings,
        /huggingface/v1/embeddings: OpenAI shape (`encoding_format: base64` honoured)
    /litellm/rerank: Cohere shape; /nvidia_nim/v1/retrieval/nvidia/<model-path>/reranking
        (hosted) and /nvidia_nim/v1/ranking (self-hosted): `{"rankings": [...]}`;
        /nvidia_nim/v2/nvcf/pexec/status/<id>: NVCF polling; /huggingface/rerank: TEI shape
    /huggingface/hf-inference/models/<org>/<model>/pipeline/feature-extraction (a single string
        input gets one flat vector), /huggingface/embed (TEI: always a list of vectors)
Control: `GET /health`, `GET /_sim/requests?trace_id=X` (records whose `x-request-id` is X, newest
last; every request is recorded with its headers and body, and `answer`, what it was sent (the
JSON body, or a stream's JSON `data:` payloads; not kept over 1 MiB); streamed answers also record
`chunks`, the frames sent, `finished`, false when the client cut the stream, and `ended`, true
once the stream stopped either way), `DELETE /_sim/requests`, `GET /_sim/holds/NAME` (how many
answers wait at gate NAME) and `POST /_sim/release/NAME` (`gates.py`).

Replies are deterministic: the words come from a hash of the messages (and Anthropic `system`),
one word = one token = one stream chunk; prompt tokens = whitespace-separated words of all
message and system text (tool results included). `max_tokens` caps the reply (finish `length` /
`max_tokens`). Embeddings and rerank scores: see `retrieval.py`.

Directives, written anywhere in the last user message (for embeddings and rerank: in any input
text): `[[sim key=value ...]]`
    tokens=N            reply length in words (default `--tokens`)
    reasoning_tokens=N  reasoning words for reasoning models (default `--reasoning-tokens`)
    latency_ms=N        delay before the response or first chunk (default `--latency-ms`)
    chunk_delay_ms=N    delay between stream chunks (default `--chunk-delay-ms`)
    fail=401|403|429|500|503|529
                        that status with the provider's own error body (xAI reports a bad key as
                        400, Perplexity's 401 is an HTML page; 403 is Anthropic's
                        `permission_error`, OpenRouter's moderation flag with its `metadata`, xAI's
                        blocked key); 429 (and Anthropic 529) carry `retry-after: 1`
    retry_after=N       with `fail=429` (or Anthropic 529): `retry-after: N` instead of 1
    hold=NAME           chat: wait until `POST /_sim/release/NAME` before answering (at most 60 s)
    fail_times=N        with `fail=` (chat): only the first N attempts fail; attempts are the POSTs
                        with the same `x-request-id` on any provider, so a retried (or fallen
                        back) request succeeds on attempt N+1
    fail=disconnect     send a few chunks (or half the JSON body), then drop the connection
    fail=midstream      streams: a few chunks, then the provider's mid-stream error (Anthropic
                        `event: error` overloaded_error; OpenAI dialect a chunk with a top-level
                        `error`, text-generation-inference's a bare string); non-streaming:
                        Anthropic 529, OpenRouter 200 with the partial answer and an `error`,
                        other OpenAI-dialect providers 503
    fail=error_body     OpenRouter, non-streaming: 200 with only `{"error": {...}}`
    pending=N           NIM hosted rerank: 202 with `NVCF-REQID`, ready after N status polls
    fail=bad_json|bad_sse|bad_list|bad_text|bad_usage|huge
                        chat: a broken answer with status 200 (`garbage.py`), in turn: cut-off
                        JSON; an HTML page instead of JSON or SSE; the reply list (`choices`,
                        Anthropic `content`, in Anthropic streams the delta) a string; the
                        reply text a number; token counts negative and strings; the reply text
                        512 MiB long, made as it is sent. Streams break at their first reply
                        chunk, then end as usual (bad_sse: the page is all there is)
    tool=NAME[,NAME2]   answer with a call to each named tool (see `tools.py`)
    tool_args=JSON      url-encoded JSON object used as the tool arguments
Documented refusals (400, `openai_checks.py`): DeepSeek in thinking mode (its reasoning model,
or `thinking: {"type": "enabled"}`) wants every assistant turn with tool calls sent back with
its `reasoning_content`; xAI's reasoning models refuse penalties and `stop`, and
`reasoning_effort` but for grok-3-mini's low/high; OpenRouter takes `reasoning.effort` xhigh,
high, medium, low, minimal or none. Perplexity's reasoning models put their reasoning in the
content between `<think>` tags; Anthropic honours `stop_sequences` (`stop_sequence` says which).
An API key containing `fail-401`, `fail-429` or `fail-500` acts like the matching `fail=`
directive (and wins over it). Only known keys are accepted (`keys.py`: `--api-keys`, and keys
the simulator issued); others get the provider's authentication error.
`response_format` is honoured (`structured.py`), as are `n`, `logprobs`, Anthropic's forced
tools, extended thinking and request checks (`anthropic_checks.py`) and prompt caches
(`prompt_cache.py`).
"""
