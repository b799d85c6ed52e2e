-- One row per API request the edge answered (see shared/audit.py). Rows are written only by
-- the audit service, in stream order within a batch, one writer at a time (advisory lock), and
-- form a hash chain: row_hash = sha256(prev_hash || canonical JSON of the row's fields).
-- entry_id is the Redis stream entry the row came from: a re-delivered entry is never stored
-- twice.
CREATE TABLE audit_log (
    seq               bigint           PRIMARY KEY,
    entry_id          text             NOT NULL UNIQUE,
    trace_id          text             NOT NULL,
    at                timestamptz      NOT NULL,
    method            text             NOT NULL,
    path              text             NOT NULL,
    status            integer          NOT NULL,
    outcome           text             NOT NULL,
    duration_ms       double precision NOT NULL,
    user_id           text,
    api_key_id        text,
    provider          text,
    model             text,
    job_id            text,
    prompt_tokens     integer          NOT NULL,
    completion_tokens integer          NOT NULL,
    total_tokens      integer          NOT NULL,
    error_type        text,
    cache             text,
    prev_hash         text             NOT NULL,
    row_hash          text             NOT NULL,
    recorded_at       timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_by_user ON audit_log (user_id, at);
CREATE INDEX audit_log_by_trace ON audit_log (trace_id);
