-- The chain is keyed (services/audit/chain.py): row_hash is an HMAC under the AUDIT_HMAC_KEYS
-- version in key_version. Rows stored before have none (a plain SHA-256) until `python -m
-- services.audit rekey` re-chains them.
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS key_version integer;

-- The chain's last row (seq, row_hash) under its own HMAC, updated with every batch: deleting
-- the newest rows leaves it pointing past the table's end. One row at most.
CREATE TABLE IF NOT EXISTS audit_chain_head (
    id          boolean     PRIMARY KEY DEFAULT true CHECK (id),
    seq         bigint      NOT NULL,
    row_hash    text        NOT NULL,
    key_version integer     NOT NULL,
    mac         text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
