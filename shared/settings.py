"""Every setting of every service, read from the environment (and `.env`) in one place.

Each setting is read from its environment variable (`PORT`, `JWT_EXPIRY`, `REDIS_URL`, ...),
every one of them explained in `.env.example`. Every value is parsed and checked when the
settings are built, so a process given a bad one stops at start (`load_settings`) with a
message naming the setting, instead of failing when the value is first read. Durations are
written `250ms`, `30s`, `15m`, `24h`, `7d` or in bare seconds (`Duration`).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import Field, GetCoreSchemaHandler, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import CoreSchema, core_schema
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from shared.client_address import ProxyHeader, TrustedProxies, parse_networks
from shared.providers import PROVIDERS
from shared.redis_keys import RedisKeys

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_PRODUCTION_BCRYPT_ROUNDS = 12


def parse_duration(text: str) -> float:
    """Seconds in a duration written `24h`, `15m`, `30s`, `250ms`, `7d` or `90` (seconds)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 15m, 24h, 30s, 250ms)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration setting: as written (`text`, e.g. `15m`) and in seconds."""

    text: str
    seconds: float

    @classmethod
    def parse(cls, text: str) -> "Duration":
        return cls(text.strip(), parse_duration(text))

    @property
    def whole_seconds(self) -> int:
        """At least one whole second: what a rate-limit window or a token lifetime counts in."""
        return max(1, int(self.seconds))

    def __str__(self) -> str:
        return self.text

    @classmethod
    def _validate(cls, value: object) -> "Duration":
        if isinstance(value, Duration):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        raise ValueError(f"not a duration: {value!r} (expected e.g. 15m, 24h, 30s, 250ms)")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate, serialization=core_schema.to_string_ser_schema()
        )


class SettingFiles(PydanticBaseSettingsSource):
    """`NAME_FILE=<path>` (environment or `.env`) sets NAME to the file's text, trailing line
    breaks dropped: how Docker and Kubernetes hand a process its mounted secrets. Any setting
    may be given so; NAME and NAME_FILE together, or a file that cannot be read, stop the
    process with an error naming the variable (never the value)."""

    def __init__(self, settings_cls: type[BaseSettings], *environments: Mapping[str, Any]):
        super().__init__(settings_cls)
        # Later environments win, as the environment wins over `.env`; names are lowercase.
        self.variables: dict[str, Any] = {}
        for environment in environments:
            self.variables.update(environment)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every field at once

    def __call__(self) -> dict[str, str]:
        values = {}
        for field in self.settings_cls.model_fields.values():
            name = (field.alias or "").lower()
            path = self.variables.get(f"{name}_file")
            if not name or not path:
                continue
            variable = f"{name.upper()}_FILE"
            if self.variables.get(name):
                raise SettingsError(f"{name.upper()} and {variable} are both set: set only one")
            try:
                values[str(field.alias)] = Path(path).read_text().rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as error:
                reason = getattr(error, "strerror", None) or type(error).__name__
                raise SettingsError(f"{variable}={path}: cannot read it ({reason})") from None
        return values


def parse_thresholds(text: str) -> tuple[float, ...]:
    """`0.8,1.0`: the shares of a budget at which alerts fire, in increasing order."""
    try:
        values = sorted({float(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise ValueError(f"not a list of numbers: {text!r} (expected e.g. 0.8,1.0)") from None
    if len(values) > 10 or any(not 0 < v <= 10 for v in values):
        raise ValueError("at most 10 thresholds, each above 0 and at most 10")
    return tuple(values)


class Settings(BaseSettings):
    # Values are read as written: none is decoded from JSON first (a duration is text).
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, enable_decoding=False
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environments = [
            source.env_vars
            for source in (dotenv_settings, env_settings)
            if isinstance(source, EnvSettingsSource)  # the .env source is one too
        ]
        files = SettingFiles(settings_cls, *environments)
        # Before the environment, where NAME may be set but empty beside NAME_FILE.
        return init_settings, files, env_settings, dotenv_settings, file_secret_settings

    node_env: Literal["development", "test", "production"] = Field("development", alias="NODE_ENV")
    port: int = Field(3001, alias="PORT")
    # uvicorn worker processes of the edge on PORT (uvicorn's own variable name).
    edge_processes: int = Field(1, ge=1, le=64, alias="WEB_CONCURRENCY")
    host: str = Field("127.0.0.1", alias="HOST")
    # The public URL clients call; /openapi.json names it as the server (empty: the page's own).
    api_base_url: str = Field("", alias="API_BASE_URL")
    log_level: str = Field("info", alias="LOG_LEVEL")
    enable_metrics: bool = Field(True, alias="ENABLE_METRICS")
    data_dir: Path = Field(Path(".data"), alias="DATA_DIR")

    redis_url: str | None = Field(None, alias="REDIS_URL")
    redis_prefix: str = Field("gw", alias="REDIS_PREFIX")
    # REDIS_URL names any node of a Redis Cluster, spoken to with the cluster client.
    redis_cluster: bool = Field(False, alias="REDIS_CLUSTER")
    # Streams each provider's queue is spread over, each in a cluster slot of its own.
    queue_shards: int = Field(1, ge=1, le=64, alias="QUEUE_SHARDS")
    database_url: str | None = Field(None, alias="DATABASE_URL")

    jwt_private_key: SecretStr | None = Field(None, alias="JWT_PRIVATE_KEY")
    jwt_public_key: str | None = Field(None, alias="JWT_PUBLIC_KEY")
    jwt_expiry: Duration = Field(Duration.parse("24h"), alias="JWT_EXPIRY")
    jwt_issuer: str = Field("ai-gateway", alias="JWT_ISSUER")
    jwt_audience: str = Field("ai-gateway", alias="JWT_AUDIENCE")
    bcrypt_rounds: int = Field(12, ge=4, le=16, alias="BCRYPT_ROUNDS")

    rate_limit_window: Duration = Field(Duration.parse("15m"), alias="RATE_LIMIT_WINDOW")
    rate_limit_max: int = Field(100, alias="RATE_LIMIT_MAX")
    paid_rate_limit_window: Duration = Field(Duration.parse("1h"), alias="PAID_RATE_LIMIT_WINDOW")
    paid_rate_limit_max: int = Field(1000, alias="PAID_RATE_LIMIT_MAX")
    tokens_per_minute: int = Field(0, ge=0, alias="TOKENS_PER_MINUTE")  # 0: unlimited

    # The first administrator's account, created (or made an admin, if it holds this
    # password) at every start of the auth service; registration never grants a role.
    bootstrap_admin_email: str | None = Field(None, max_length=254, alias="BOOTSTRAP_ADMIN_EMAIL")
    bootstrap_admin_password: SecretStr | None = Field(None, alias="BOOTSTRAP_ADMIN_PASSWORD")
    # Failed logins (or taken emails at registration) within LOGIN_LOCKOUT: at one account
    # from one client, and from one client at all (services/auth/throttle.py).
    login_max_failures: int = Field(5, ge=1, alias="LOGIN_MAX_FAILURES")
    login_client_max_failures: int = Field(20, ge=1, alias="LOGIN_CLIENT_MAX_FAILURES")
    login_lockout: Duration = Field(Duration.parse("15m"), alias="LOGIN_LOCKOUT")

    # Per client address on /api/v1/auth/* (registration, login, refresh).
    auth_rate_limit_max: int = Field(10, ge=1, alias="AUTH_RATE_LIMIT_MAX")
    auth_rate_limit_window: Duration = Field(Duration.parse("1m"), alias="AUTH_RATE_LIMIT_WINDOW")
    # Failed authentications per client address a AUTH_RATE_LIMIT_WINDOW, on any route; past
    # them the edge answers 429 and looks up no unknown API key.
    auth_client_max_failures: int = Field(30, ge=1, alias="AUTH_CLIENT_MAX_FAILURES")
    max_body_bytes: int = Field(1_048_576, ge=1024, alias="MAX_BODY_BYTES")
    # Per request: messages of a chat, characters of their text (or of the inputs, query and
    # documents of embeddings and rerank), answer tokens asked for, retrieval inputs.
    max_messages: int = Field(500, ge=1, alias="MAX_MESSAGES")
    max_prompt_chars: int = Field(500_000, ge=1, alias="MAX_PROMPT_CHARS")
    max_output_tokens: int = Field(65_536, ge=1, alias="MAX_OUTPUT_TOKENS")
    max_inputs: int = Field(1000, ge=1, alias="MAX_INPUTS")
    # A chat parameter its target cannot honour is dropped (and named in X-Dropped-Params)
    # instead of refused with a 400, for callers that do not say (`drop_params`).
    drop_params: bool = Field(False, alias="DROP_PARAMS")
    # Streams open at once per user, and per gateway API key (0: only its owner's count);
    # every edge replica counts in Redis.
    max_open_streams: int = Field(20, ge=1, alias="MAX_OPEN_STREAMS")
    max_open_streams_per_key: int = Field(0, ge=0, alias="MAX_OPEN_STREAMS_PER_KEY")
    cors_origins: str = Field("", alias="CORS_ORIGINS")  # comma-separated allow-list
    # Proxies (CIDRs, comma-separated) whose TRUSTED_PROXY_HEADER names the client: the
    # ingress or load balancer in front of the edge, and the edge in front of auth. Any other
    # peer is the client itself (shared/client_address.py).
    trusted_proxies: str = Field("127.0.0.1/32,::1/128", alias="TRUSTED_PROXIES")
    trusted_proxy_header: ProxyHeader = Field("x-forwarded-for", alias="TRUSTED_PROXY_HEADER")

    auth_url: str = Field("http://127.0.0.1:3002", alias="AUTH_URL")
    auth_port: int = Field(3002, alias="AUTH_PORT")
    keyvault_url: str = Field("http://127.0.0.1:3003", alias="KEYVAULT_URL")
    keyvault_port: int = Field(3003, alias="KEYVAULT_PORT")
    # "1:<base64 of 32 bytes>,2:<...>": every version stays readable, the highest encrypts.
    keyvault_master_keys: SecretStr | None = Field(None, alias="KEYVAULT_MASTER_KEYS")
    # The keyvault's decrypt route takes only this token: the workers' and keyvault's alone.
    keyvault_service_token: SecretStr | None = Field(None, alias="KEYVAULT_SERVICE_TOKEN")
    # The edge's token for the other internal routes of auth and keyvault (shared/service_auth).
    internal_service_token: SecretStr | None = Field(None, alias="INTERNAL_SERVICE_TOKEN")
    provider_key_cache_ttl: Duration = Field(Duration.parse("60s"), alias="PROVIDER_KEY_CACHE_TTL")
    # How often the keyvault deletes expired validation copies of provider keys.
    keyvault_purge_interval: Duration = Field(Duration.parse("1m"), alias="KEYVAULT_PURGE_INTERVAL")
    simulator_port: int = Field(3010, alias="SIMULATOR_PORT")

    request_timeout: Duration = Field(Duration.parse("120s"), alias="REQUEST_TIMEOUT")
    upstream_connect_timeout: Duration = Field(
        Duration.parse("10s"), alias="UPSTREAM_CONNECT_TIMEOUT"
    )
    # The most a worker reads of one upstream answer (a non-streamed body, or one line of a
    # stream; embeddings may take it per 64 inputs) and of one whole stream; past either the
    # call is cut (provider_error).
    upstream_max_bytes: int = Field(8_388_608, ge=1024, alias="UPSTREAM_MAX_BYTES")
    upstream_max_stream_bytes: int = Field(67_108_864, ge=1024, alias="UPSTREAM_MAX_STREAM_BYTES")
    worker_concurrency: int = Field(64, ge=1, alias="WORKER_CONCURRENCY")
    # After a stream's first delta, the longest a delta waits to share a message with others
    # (a worker sends every stream's waiting deltas together, once per this interval).
    stream_coalesce: Duration = Field(Duration.parse("8ms"), alias="STREAM_COALESCE")
    queue_maxlen: int = Field(100_000, ge=1, alias="QUEUE_MAXLEN")
    # Audit records waiting in Redis for the audit service; past it the edge drops new ones
    # (counted in gateway_audit_records_dropped_total) rather than let Redis grow.
    audit_stream_maxlen: int = Field(100_000, ge=1, alias="AUDIT_STREAM_MAXLEN")

    # Reliability (worker retries, circuit breakers, crash recovery, shutdown).
    retry_max_attempts: int = Field(3, ge=1, le=10, alias="RETRY_MAX_ATTEMPTS")
    retry_base_delay: Duration = Field(Duration.parse("250ms"), alias="RETRY_BASE_DELAY")
    retry_max_delay: Duration = Field(Duration.parse("8s"), alias="RETRY_MAX_DELAY")
    breaker_window: Duration = Field(Duration.parse("30s"), alias="BREAKER_WINDOW")
    breaker_min_requests: int = Field(10, ge=1, alias="BREAKER_MIN_REQUESTS")
    breaker_failure_rate: float = Field(0.5, gt=0, le=1, alias="BREAKER_FAILURE_RATE")
    breaker_cooldown: Duration = Field(Duration.parse("15s"), alias="BREAKER_COOLDOWN")
    breaker_probes: int = Field(2, ge=1, alias="BREAKER_PROBES")
    reclaim_idle: Duration = Field(Duration.parse("30s"), alias="RECLAIM_IDLE")
    max_deliveries: int = Field(3, ge=1, alias="MAX_DELIVERIES")
    worker_shutdown_grace: Duration = Field(Duration.parse("20s"), alias="WORKER_SHUTDOWN_GRACE")
    heartbeat_interval: Duration = Field(Duration.parse("5s"), alias="HEARTBEAT_INTERVAL")
    # Backpressure: jobs waiting on one provider's stream before the edge answers 503.
    queue_limit: int = Field(1000, ge=1, alias="QUEUE_LIMIT")
    cache_ttl: Duration = Field(Duration.parse("1h"), alias="CACHE_TTL")
    # How often one edge replica refetches every provider's model list through its worker pool,
    # before the cached one expires; "0" turns it off.
    model_refresh_interval: Duration = Field(Duration.parse("10m"), alias="MODEL_REFRESH_INTERVAL")
    # "1:<base64 of 32+ bytes>,2:<...>": the audit chain's HMAC keys; the highest chains new
    # rows, every version verifies (services/audit/chain_keys.py).
    audit_hmac_keys: SecretStr | None = Field(None, alias="AUDIT_HMAC_KEYS")
    # Spend: the operator's price rows over the shipped ones (JSON or YAML, shared/pricing.py),
    # the shares of a budget whose crossing raises an alert, and where alerts are POSTed
    # (signed with HMAC-SHA256 when a secret is set; the workers deliver them).
    prices_file: Path | None = Field(None, alias="PRICES_FILE")
    budget_alert_thresholds: str = Field("0.8,1.0", alias="BUDGET_ALERT_THRESHOLDS")
    budget_alert_webhook_url: str | None = Field(None, alias="BUDGET_ALERT_WEBHOOK_URL")
    budget_alert_webhook_secret: SecretStr | None = Field(None, alias="BUDGET_ALERT_WEBHOOK_SECRET")
    audit_url: str = Field("http://127.0.0.1:3004", alias="AUDIT_URL")
    audit_port: int = Field(3004, alias="AUDIT_PORT")
    # The web console (services/console): its port, the edge it calls (the public API, with
    # each user's own token), and whether its cookies are `Secure` (HTTPS only; off only for
    # plain-HTTP local use, as `make run` does).
    console_port: int = Field(3005, alias="CONSOLE_PORT")
    edge_url: str = Field("http://127.0.0.1:3001", alias="EDGE_URL")
    console_secure_cookies: bool = Field(True, alias="CONSOLE_SECURE_COOKIES")
    # Where a worker process serves /metrics (0: nowhere); containers use 9100.
    metrics_port: int = Field(0, ge=0, alias="METRICS_PORT")

    anthropic_api_key: SecretStr | None = Field(None, alias="ANTHROPIC_API_KEY")
    deepseek_api_key: SecretStr | None = Field(None, alias="DEEPSEEK_API_KEY")
    xai_api_key: SecretStr | None = Field(None, alias="XAI_API_KEY")
    openrouter_api_key: SecretStr | None = Field(None, alias="OPENROUTER_API_KEY")
    litellm_api_key: SecretStr | None = Field(None, alias="LITELLM_API_KEY")
    nvidia_nim_api_key: SecretStr | None = Field(None, alias="NVIDIA_NIM_API_KEY")
    perplexity_api_key: SecretStr | None = Field(None, alias="PERPLEXITY_API_KEY")
    hf_token: SecretStr | None = Field(None, alias="HF_TOKEN")

    anthropic_base_url: str | None = Field(None, alias="ANTHROPIC_BASE_URL")
    deepseek_base_url: str | None = Field(None, alias="DEEPSEEK_BASE_URL")
    xai_base_url: str | None = Field(None, alias="XAI_BASE_URL")
    openrouter_base_url: str | None = Field(None, alias="OPENROUTER_BASE_URL")
    litellm_base_url: str | None = Field(None, alias="LITELLM_BASE_URL")
    nvidia_nim_base_url: str | None = Field(None, alias="NVIDIA_NIM_BASE_URL")
    perplexity_base_url: str | None = Field(None, alias="PERPLEXITY_BASE_URL")
    huggingface_base_url: str | None = Field(None, alias="HUGGINGFACE_BASE_URL")
    # NIM's hosted rerankers live on another host than its chat and embeddings API; unset, a
    # self-hosted NIM (any NVIDIA_NIM_BASE_URL but the hosted one) ranks at its own /ranking.
    nvidia_nim_retrieval_url: str | None = Field(None, alias="NVIDIA_NIM_RETRIEVAL_URL")
    # Where a hosted NIM call answered 202 (NVCF-REQID) is polled for its result.
    nvidia_nim_poll_url: str = Field(
        "https://api.nvcf.nvidia.com/v2/nvcf/pexec/status", alias="NVIDIA_NIM_POLL_URL"
    )
    # Hugging Face reranks through a text-embeddings-inference server of your own.
    huggingface_tei_url: str | None = Field(None, alias="HUGGINGFACE_TEI_URL")

    @field_validator(
        "jwt_expiry",
        "rate_limit_window",
        "paid_rate_limit_window",
        "login_lockout",
        "auth_rate_limit_window",
        "request_timeout",
        "upstream_connect_timeout",
        "breaker_window",
        "reclaim_idle",
        "heartbeat_interval",
        "cache_ttl",
        "keyvault_purge_interval",
    )
    @classmethod
    def _longer_than_zero(cls, value: Duration) -> Duration:
        if value.seconds <= 0:
            raise ValueError(f"must be longer than 0, got {value.text!r}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _are_networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("prices_file", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("budget_alert_thresholds")
    @classmethod
    def _are_thresholds(cls, value: str) -> str:
        parse_thresholds(value)
        return value

    @field_validator("budget_alert_webhook_url")
    @classmethod
    def _is_http_url(cls, value: str | None) -> str | None:
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("BUDGET_ALERT_WEBHOOK_URL must be an http(s) URL")
        return value or None

    @property
    def redis_keys(self) -> RedisKeys:
        return RedisKeys(self.redis_prefix, self.queue_shards)

    @property
    def alert_thresholds(self) -> tuple[float, ...]:
        return parse_thresholds(self.budget_alert_thresholds)

    @model_validator(mode="after")
    def _production_bcrypt(self) -> "Settings":
        if self.node_env == "production" and self.bcrypt_rounds < MIN_PRODUCTION_BCRYPT_ROUNDS:
            raise ValueError(
                f"BCRYPT_ROUNDS must be at least {MIN_PRODUCTION_BCRYPT_ROUNDS} in production"
            )
        return self

    @model_validator(mode="after")
    def _cluster_named(self) -> "Settings":
        # Without it `make run` would start its embedded Redis, which is no cluster.
        if self.redis_cluster and not self.redis_url:
            raise ValueError("REDIS_CLUSTER=true needs REDIS_URL naming a node of the cluster")
        return self

    @property
    def proxies(self) -> TrustedProxies:
        """Whose forwarding headers name the client (`ClientAddress` reads them)."""
        return TrustedProxies(parse_networks(self.trusted_proxies), self.trusted_proxy_header)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def provider_key(self, provider: str) -> str | None:
        secret: SecretStr | None = getattr(self, PROVIDERS[provider].key_setting)
        return secret.get_secret_value() if secret else None

    def provider_base_url(self, provider: str) -> str:
        configured: str | None = getattr(self, f"{provider}_base_url")
        return (configured or PROVIDERS[provider].default_base_url).rstrip("/")

    def configured_provider_keys(self) -> list[str]:
        return [p for p in PROVIDERS if self.provider_key(p)]


def load_settings() -> Settings:
    """The settings of this process; a bad value stops it here, with a message naming the
    setting (never its value, which may be a secret; a duration's message quotes its text)."""
    try:
        return Settings()
    except pydantic.ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise SystemExit("Invalid settings:\n  " + "\n  ".join(problems)) from None
