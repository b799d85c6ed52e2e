-- Emails are stored lower-cased by the service; the CHECK keeps that true for every writer,
-- so a plain unique index is a case-insensitive one without needing the citext extension.
CREATE TABLE users (
    id            text        PRIMARY KEY,
    email         text        NOT NULL UNIQUE CHECK (email = lower(email)),
    name          text        NOT NULL,
    password_hash text        NOT NULL,
    tier          text        NOT NULL DEFAULT 'free',
    role          text        NOT NULL DEFAULT 'user',
    created_at    timestamptz NOT NULL DEFAULT now()
);
