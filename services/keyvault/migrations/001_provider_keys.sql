-- A user's own provider keys, sealed with AES-256-GCM (see services/keyvault/crypto.py).
-- key_version names the master key that sealed the row; the master keys live outside the
-- database. Rows with expires_at set are short-lived copies made only to validate a key.
CREATE TABLE provider_keys (
    id          text        PRIMARY KEY,
    user_id     text        NOT NULL,
    provider    text        NOT NULL,
    name        text        NOT NULL,
    masked      text        NOT NULL,
    key_version integer     NOT NULL,
    nonce       bytea       NOT NULL,
    ciphertext  bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    rotated_at  timestamptz,
    expires_at  timestamptz
);
CREATE INDEX provider_keys_by_user ON provider_keys (user_id, provider, created_at);
CREATE INDEX provider_keys_by_version ON provider_keys (key_version);

-- Every decrypt: who asked (which service), for which key and user, when, in which request.
CREATE TABLE provider_key_audit (
    id       bigserial   PRIMARY KEY,
    key_id   text        NOT NULL,
    user_id  text        NOT NULL,
    actor    text        NOT NULL,
    action   text        NOT NULL,
    trace_id text,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX provider_key_audit_by_key ON provider_key_audit (key_id, at);
