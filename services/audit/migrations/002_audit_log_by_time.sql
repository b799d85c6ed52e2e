-- The operators' recent-traffic query (provider-stats) reads the last minutes of every user.
CREATE INDEX IF NOT EXISTS audit_log_by_time ON audit_log (at);
