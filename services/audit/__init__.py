"""The audit service: audit stream -> hash-chained PostgreSQL table, and the usage API."""
