"""Every Redis key, stream and channel name the fleet uses, built in this one place.

A prefix (setting `REDIS_PREFIX`, default `gw`) namespaces them all, so several fleets (or
test runs) can share one Redis server.
"""

from dataclasses import dataclass

WORKER_GROUP = "workers"


@dataclass(frozen=True)
class RedisKeys:
    prefix: str = "gw"

    def jobs(self, provider: str) -> str:
        """Stream of chat jobs for one provider's worker pool (consumer group `workers`)."""
        return f"{self.prefix}:jobs:{provider}"

    def replies(self, edge_id: str) -> str:
        """Pub/sub channel of one edge process: workers send it the events of every job it
        enqueued, each framed with its job id (`shared.messages.frame`)."""
        return f"{self.prefix}:replies:{edge_id}"

    def cancelled(self, job_id: str) -> str:
        """Set by the edge when a job's client left before its answer (TTL: the job's
        deadline): the worker running the job stops its upstream call."""
        return f"{self.prefix}:cancelled:{job_id}"

    def models(self, provider: str) -> str:
        """The provider's model list, as its worker pool last fetched it (TTL one hour)."""
        return f"{self.prefix}:models:{provider}"

    def models_refresh_lease(self) -> str:
        """Held by the one edge replica refreshing every model list this interval."""
        return f"{self.prefix}:lease:models"

    def own_keys(self, user_id: str) -> str:
        """Hash provider -> id of the user's own key the workers should use (keyvault writes)."""
        return f"{self.prefix}:ownkeys:{user_id}"

    def revoked(self, jti: str) -> str:
        """Deny-list entry of a logged-out or rotated token (TTL: the token's remaining life)."""
        return f"{self.prefix}:revoked:{jti}"

    def api_key(self, key_hash: str) -> str:
        """The edge's short cache of a gateway API key's principal (auth deletes on revoke)."""
        return f"{self.prefix}:apikey:{key_hash}"

    def limits(self, scope: str, owner_id: str) -> str:
        """Hash of custom limits for a user or a gateway API key (`scope` = user | key)."""
        return f"{self.prefix}:limits:{scope}:{owner_id}"

    def login_failures(self, subject: str) -> str:
        """Failed logins of one (account, client) pair or one client within the throttling
        window."""
        return f"{self.prefix}:loginfail:{subject}"

    def auth_failures(self, client: str) -> str:
        """Failed authentications of one client address at the edge in the current window."""
        return f"{self.prefix}:authfail:{client}"

    def rate_window(self, scope: str, owner_id: str) -> str:
        """Request count and window end of a user, gateway API key or client (rate limiting)."""
        return f"{self.prefix}:rl:{scope}:{owner_id}"

    def token_budget(self, scope: str, owner_id: str) -> str:
        """Tokens reserved and used in the current minute (token limits)."""
        return f"{self.prefix}:tpm:{scope}:{owner_id}"

    def spend(self, scope: str, owner_id: str, stamp: str) -> str:
        """USD spent and reserved (1e-8 units) by a user or gateway API key in one budget
        period, stamped with its start (`shared.budgets`; TTL: a day past the period)."""
        return f"{self.prefix}:spend:{scope}:{owner_id}:{stamp}"

    def key_spend(self, day: str) -> str:
        """Sorted set: gateway API key id -> USD it spent on one UTC day (`YYYY-MM-DD`; TTL two
        days), for the top-keys gauge."""
        return f"{self.prefix}:keyspend:{day}"

    def budget_alerts(self) -> str:
        """Stream of budget threshold crossings, delivered to the alert webhook by the
        workers (`services.workers.alerts`)."""
        return f"{self.prefix}:budget-alerts"

    def open_streams(self, scope: str, owner_id: str) -> str:
        """Sorted set of the open streams of a user or gateway API key: slot id -> expiry (ms)."""
        return f"{self.prefix}:streams:{scope}:{owner_id}"

    def breaker(self, provider: str) -> str:
        """Circuit-breaker state of a provider (hash), shared by every worker and edge."""
        return f"{self.prefix}:cb:{provider}"

    def heartbeat(self, provider: str) -> str:
        """Sorted set: worker consumer name -> last heartbeat (ms), per provider pool."""
        return f"{self.prefix}:hb:{provider}"

    def dead_letters(self, provider: str) -> str:
        """Stream of jobs that failed `MAX_DELIVERIES` times, with their last error."""
        return f"{self.prefix}:dlq:{provider}"

    def streamed(self, job_id: str) -> str:
        """Set once a job's first delta reached its client (TTL): a reclaimed job that has
        streamed cannot be run again, only ended with an error."""
        return f"{self.prefix}:streamed:{job_id}"

    def audit(self) -> str:
        """Stream of audit records, written by the edge, consumed into PostgreSQL."""
        return f"{self.prefix}:audit"

    def response_cache(self, digest: str) -> str:
        """A cached answer to a deterministic (temperature 0) request."""
        return f"{self.prefix}:cache:{digest}"
