-- Roles and tiers are closed sets; custom limits are NULL when the tier's default applies.
ALTER TABLE users
    ADD CONSTRAINT users_role_check CHECK (role IN ('user', 'admin')),
    ADD CONSTRAINT users_tier_check CHECK (tier IN ('free', 'paid')),
    ADD COLUMN limit_requests          integer CHECK (limit_requests > 0),
    ADD COLUMN limit_window            text,
    ADD COLUMN limit_tokens_per_minute integer CHECK (limit_tokens_per_minute >= 0);

-- Gateway API keys: only the SHA-256 (hex) of the key is stored; `prefix` helps people
-- recognise a key in a list. Revoked keys keep their row (revoked_at set) for audit.
CREATE TABLE api_keys (
    id                      text        PRIMARY KEY,
    user_id                 text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                    text        NOT NULL,
    key_hash                text        NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    prefix                  text        NOT NULL,
    allowed_providers       text[],
    allowed_models          text[],
    limit_requests          integer     CHECK (limit_requests > 0),
    limit_window            text,
    limit_tokens_per_minute integer     CHECK (limit_tokens_per_minute >= 0),
    expires_at              timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    revoked_at              timestamptz
);

CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at) WHERE revoked_at IS NULL;
