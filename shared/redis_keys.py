"""Every Redis key, stream and channel name the fleet uses, built in this one place.

A prefix (setting `REDIS_PREFIX`, default `gw`) namespaces them all, so several fleets (or
test runs) can share one Redis server.

Names carry a Redis Cluster hash tag (the part in braces), so that the names one Lua script or
transaction touches live in one slot: a user's names (and those of the user's gateway API keys,
which admission counts together with the user's) are tagged `{u:<user id>}`, a client
address's `{c:<address>}`, a provider's `{p:<provider>}` (shard `i` > 0 of its queue:
`{p:<provider>:<i>}`), a job's `{j:<job id>}`, an edge process's reply channel
`{e:<edge id>}`. Names of the fleet as a whole have their own. A single Redis server ignores
the tags.
"""

import zlib
from dataclasses import dataclass

WORKER_GROUP = "workers"


def owner_tag(scope: str, owner_id: str, user_id: str = "") -> str:
    """The hash tag of a principal's names: a user's own, a gateway API key's its user's (so
    one script admits a request for both), a client address's its own."""
    if scope == "client":
        return f"{{c:{owner_id}}}"
    if scope == "key" and not user_id:
        raise ValueError("a gateway API key's names need its user's id")
    return f"{{u:{user_id or owner_id}}}"


@dataclass(frozen=True)
class RedisKeys:
    prefix: str = "gw"
    shards: int = 1  # streams each provider's queue is spread over (`QUEUE_SHARDS`)

    def _provider(self, provider: str, shard: int = 0) -> str:
        tag = f"p:{provider}:{shard}" if shard else f"p:{provider}"
        return f"{self.prefix}:{{{tag}}}"

    def _owner(self, scope: str, owner_id: str, user_id: str) -> str:
        return f"{self.prefix}:{owner_tag(scope, owner_id, user_id)}"

    def jobs(self, provider: str, shard: int = 0) -> str:
        """Stream of jobs for one provider's worker pool (consumer group `workers`): shard
        `shard` of the provider's queue. Shard 0 shares the provider's tag; each other shard
        has a tag, so a cluster slot, of its own."""
        return f"{self._provider(provider, shard)}:jobs"

    def job_shards(self, provider: str) -> list[str]:
        """Every shard of the provider's queue, in order: a worker pool reads them all."""
        return [self.jobs(provider, shard) for shard in range(self.shards)]

    def jobs_for(self, provider: str, job_id: str) -> str:
        """The shard a job goes to: spread evenly by its id, the same for every replica."""
        return self.jobs(provider, zlib.crc32(job_id.encode()) % self.shards)

    def replies(self, edge_id: str) -> str:
        """Pub/sub channel of one edge process: workers send it the events of every job it
        enqueued, each framed with its job id (`shared.messages.frame`)."""
        return f"{self.prefix}:{{e:{edge_id}}}:replies"

    def cancelled(self, job_id: str) -> str:
        """Set by the edge when a job's client left before its answer (TTL: the job's
        deadline): the worker running the job stops its upstream call."""
        return f"{self.prefix}:{{j:{job_id}}}:cancelled"

    def models(self, provider: str) -> str:
        """The provider's model list, as its worker pool last fetched it (TTL one hour)."""
        return f"{self._provider(provider)}:models"

    def models_refresh_lease(self) -> str:
        """Held by the one edge replica refreshing every model list this interval."""
        return f"{self.prefix}:lease:models"

    def own_keys(self, user_id: str) -> str:
        """Hash provider -> id of the user's own key the workers should use (keyvault writes)."""
        return f"{self._owner('user', user_id, '')}:ownkeys"

    def revoked(self, user_id: str, jti: str) -> str:
        """Deny-list entry of a logged-out or rotated token of a user (TTL: the token's
        remaining life)."""
        return f"{self._owner('user', user_id, '')}:revoked:{jti}"

    def api_key(self, key_hash: str) -> str:
        """The edge's short cache of a gateway API key's principal (auth deletes on revoke)."""
        return f"{self.prefix}:apikey:{key_hash}"

    def limits(self, scope: str, owner_id: str, user_id: str = "") -> str:
        """Hash of custom limits for a user or a gateway API key (`scope` = user | key)."""
        return f"{self._owner(scope, owner_id, user_id)}:limits:{scope}:{owner_id}"

    def login_failures(self, client: str, subject: str) -> str:
        """Failed logins of one (account, client) pair or one client within the throttling
        window; `client` (a digest of the address) tags both, counted in one transaction."""
        return f"{self.prefix}:{owner_tag('client', client)}:loginfail:{subject}"

    def auth_failures(self, client: str) -> str:
        """Failed authentications of one client address at the edge in the current window."""
        return f"{self.prefix}:authfail:{client}"

    def rate_window(self, scope: str, owner_id: str, user_id: str = "") -> str:
        """Request count and window end of a user, gateway API key or client (rate limiting)."""
        return f"{self._owner(scope, owner_id, user_id)}:rl:{scope}:{owner_id}"

    def token_budget(self, scope: str, owner_id: str, user_id: str = "") -> str:
        """Tokens reserved and used in the current minute (token limits)."""
        return f"{self._owner(scope, owner_id, user_id)}:tpm:{scope}:{owner_id}"

    def spend(self, scope: str, owner_id: str, stamp: str, user_id: str = "") -> str:
        """USD spent and reserved (1e-8 units) by a user or gateway API key in one budget
        period, stamped with its start (`shared.budgets`; TTL: a day past the period)."""
        return f"{self._owner(scope, owner_id, user_id)}:spend:{scope}:{owner_id}:{stamp}"

    def key_spend(self, day: str) -> str:
        """Sorted set: gateway API key id -> USD it spent on one UTC day (`YYYY-MM-DD`; TTL two
        days), for the top-keys gauge."""
        return f"{self.prefix}:keyspend:{day}"

    def budget_alerts(self) -> str:
        """Stream of budget threshold crossings, delivered to the alert webhook by the
        workers (`services.workers.alerts`)."""
        return f"{self.prefix}:budget-alerts"

    def open_streams(self, scope: str, owner_id: str, user_id: str = "") -> str:
        """Sorted set of the open streams of a user or gateway API key: slot id -> expiry (ms)."""
        return f"{self._owner(scope, owner_id, user_id)}:streams:{scope}:{owner_id}"

    def breaker(self, provider: str) -> str:
        """Circuit-breaker state of a provider (hash), shared by every worker and edge."""
        return f"{self._provider(provider)}:cb"

    def heartbeat(self, provider: str) -> str:
        """Sorted set: worker consumer name -> last heartbeat (ms), per provider pool."""
        return f"{self._provider(provider)}:hb"

    def dead_letters(self, provider: str) -> str:
        """Stream of jobs that failed `MAX_DELIVERIES` times, with their last error."""
        return f"{self._provider(provider)}:dlq"

    def streamed(self, job_id: str) -> str:
        """Set once a job's first delta reached its client (TTL): a reclaimed job that has
        streamed cannot be run again, only ended with an error."""
        return f"{self.prefix}:{{j:{job_id}}}:streamed"

    def audit(self) -> str:
        """Stream of audit records, written by the edge, consumed into PostgreSQL."""
        return f"{self.prefix}:audit"

    def response_cache(self, digest: str) -> str:
        """A cached answer to a deterministic (temperature 0) request."""
        return f"{self.prefix}:cache:{digest}"
