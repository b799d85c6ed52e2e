-- What each request cost (NULL: its model has no price), the prompt tokens its provider read
-- from the prompt cache, and records of events that are not requests (`budget_alert`, its
-- figures in `details`).
ALTER TABLE audit_log
    ADD COLUMN cached_tokens integer,
    ADD COLUMN cost_usd      numeric(20, 8),
    ADD COLUMN event         text,
    ADD COLUMN details       jsonb;
