"""Which processes make up a fleet, with the environment each one gets."""

from dataclasses import dataclass, field
from pathlib import Path

from services.fleet.processes import Service
from services.simulator.keys import DEMO_KEY
from shared.providers import PROVIDERS

SIMULATOR_KEY = DEMO_KEY  # the key every worker pool calls the simulator with


@dataclass(frozen=True)
class FleetConfig:
    redis_url: str
    database_url: str
    data_dir: Path
    edge_port: int
    auth_port: int
    keyvault_port: int
    simulator_port: int | None  # None: the providers are the real ones
    simulator_args: tuple[str, ...] = ()
    worker_metrics_ports: tuple[int, ...] = ()  # one per provider, in order; none: not served
    audit_port: int | None = None  # None: no audit service (records wait in the stream)
    console_port: int | None = None  # None: no web console
    providers: tuple[str, ...] = tuple(PROVIDERS)
    redis_prefix: str = "gw"
    log_dir: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def edge_url(self) -> str:
        return f"http://127.0.0.1:{self.edge_port}"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.auth_port}"

    @property
    def keyvault_url(self) -> str:
        return f"http://127.0.0.1:{self.keyvault_port}"

    @property
    def audit_url(self) -> str | None:
        return f"http://127.0.0.1:{self.audit_port}" if self.audit_port else None

    @property
    def console_url(self) -> str | None:
        return f"http://127.0.0.1:{self.console_port}" if self.console_port else None

    @property
    def simulator_url(self) -> str | None:
        return f"http://127.0.0.1:{self.simulator_port}" if self.simulator_port else None


def simulator_env(simulator_url: str, providers: tuple[str, ...]) -> dict[str, str]:
    """Points each provider at its path on the simulator, with a placeholder key."""
    env = {}
    for provider_id in providers:
        provider = PROVIDERS[provider_id]
        env[f"{provider_id.upper()}_BASE_URL"] = f"{simulator_url}/{provider_id}"
        env[provider.key_setting.upper()] = SIMULATOR_KEY
    # Reranking lives on other hosts: NIM's hosted retrieval API and a TEI server for HF.
    env["NVIDIA_NIM_RETRIEVAL_URL"] = f"{simulator_url}/nvidia_nim/v1"
    env["NVIDIA_NIM_POLL_URL"] = f"{simulator_url}/nvidia_nim/v2/nvcf/pexec/status"
    env["HUGGINGFACE_TEI_URL"] = f"{simulator_url}/huggingface"
    return env


def fleet_env(config: FleetConfig) -> dict[str, str]:
    """The environment every process of the fleet shares."""
    env = {
        "REDIS_URL": config.redis_url,
        "DATABASE_URL": config.database_url,
        "REDIS_PREFIX": config.redis_prefix,
        "DATA_DIR": str(config.data_dir),
        "AUTH_URL": config.auth_url,
        "AUTH_PORT": str(config.auth_port),
        "KEYVAULT_URL": config.keyvault_url,
        "KEYVAULT_PORT": str(config.keyvault_port),
        "PORT": str(config.edge_port),
        "HOST": "127.0.0.1",
        **config.extra_env,
    }
    if config.audit_url:
        env.update(AUDIT_URL=config.audit_url, AUDIT_PORT=str(config.audit_port))
    if config.simulator_url:
        env.update(simulator_env(config.simulator_url, config.providers))
    return env


def edge_replica(config: FleetConfig, port: int, **overrides: str) -> Service:
    """One more edge process for the same fleet (as a second replica behind a balancer)."""
    env = {**fleet_env(config), "PORT": str(port), **overrides}
    log = config.log_dir / f"edge-{port}.log" if config.log_dir else None
    health = f"http://127.0.0.1:{port}/health/ready"
    return Service(f"edge-{port}", ["-m", "services.edge"], env, health_url=health, log_path=log)


def audit_service(config: FleetConfig, env: dict[str, str]) -> Service:
    log = config.log_dir / "audit.log" if config.log_dir else None
    health = f"{config.audit_url}/health/ready"
    return Service("audit", ["-m", "services.audit"], env, health_url=health, log_path=log)


def plan(config: FleetConfig) -> list[Service]:
    env = fleet_env(config)

    def service(
        name: str,
        args: list[str],
        health_url: str | None,
        extra: dict[str, str] | None = None,
        predecessor_flag: str | None = None,
    ) -> Service:
        log = config.log_dir / f"{name}.log" if config.log_dir else None
        return Service(
            name,
            args,
            {**env, **(extra or {})},
            health_url=health_url,
            log_path=log,
            predecessor_flag=predecessor_flag,
        )

    services = []
    if config.simulator_url:
        simulator = ["-m", "services.simulator", "--port", str(config.simulator_port)]
        health = f"{config.simulator_url}/health"
        services.append(service("simulator", [*simulator, *config.simulator_args], health))
    services.append(service("auth", ["-m", "services.auth"], f"{config.auth_url}/health/ready"))
    keyvault_health = f"{config.keyvault_url}/health/ready"
    services.append(service("keyvault", ["-m", "services.keyvault"], keyvault_health))
    if config.audit_url:
        services.append(audit_service(config, env))
    ports = config.worker_metrics_ports or (0,) * len(config.providers)
    services += [
        service(
            f"worker-{provider}",
            ["-m", "services.workers", "--provider", provider],
            f"http://127.0.0.1:{port}/health/ready" if port else None,
            {"METRICS_PORT": str(port)},
            predecessor_flag="--predecessor",
        )
        for provider, port in zip(config.providers, ports, strict=True)
    ]
    services.append(service("edge", ["-m", "services.edge"], f"{config.edge_url}/health/ready"))
    if config.console_url:
        # Plain HTTP on this machine: cookies without `Secure` (production keeps it on).
        console_env = {
            "EDGE_URL": config.edge_url,
            "CONSOLE_PORT": str(config.console_port),
            "CONSOLE_SECURE_COOKIES": "false",
        }
        health = f"{config.console_url}/health/ready"
        services.append(service("console", ["-m", "services.console"], health, console_env))
    return services
