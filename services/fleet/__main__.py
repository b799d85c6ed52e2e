"""`python -m services.fleet` (what `make run` starts): the whole fleet on this machine.

Uses `REDIS_URL` / `DATABASE_URL` when set, else embedded servers under `DATA_DIR`; starts the
provider simulator when no provider key is configured; restarts a process that exits
(`supervisor.py`); stops everything on Ctrl-C / SIGTERM.
"""

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

from services.fleet.infra import create_database, embedded_postgres, embedded_redis
from services.fleet.plan import FleetConfig, plan
from services.fleet.processes import Service, stop_all
from services.fleet.supervisor import Supervisor
from shared.providers import PROVIDERS
from shared.settings import Settings, load_settings

# `make run` puts every worker pool on one host: each gets its own metrics port from here.
WORKER_METRICS_BASE = 9100


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def provider_choice(settings: Settings) -> tuple[tuple[str, ...], bool]:
    """The providers to serve and whether the simulator stands in for them."""
    configured = tuple(settings.configured_provider_keys())
    if not configured:
        say("No provider API keys are configured: the providers are simulated by the")
        say("built-in provider simulator. Set e.g. ANTHROPIC_API_KEY to use a real provider.")
        return tuple(PROVIDERS), True
    return configured, False


def report(config: FleetConfig, services: list[Service]) -> None:
    say()
    say("The fleet is running:")
    for service in services:
        pid = service.process.pid if service.process else "-"
        where = service.health_url.rsplit("/health", 1)[0] if service.health_url else "(queue)"
        say(f"  {service.name:<20} pid {pid!s:<8} {where}")
    say(f"  {'redis':<20} {'':<12} {config.redis_url}")
    say(f"  {'postgresql':<20} {'':<12} {config.database_url}")
    say()
    say(f"Gateway API: {config.edge_url}   (logs in {config.log_dir})")
    if config.console_url:
        say(f"Web console: {config.console_url}/console/")
    say("Press Ctrl-C to stop.")


def start_all(services: list[Service], stopping: Callable[[], bool]) -> bool:
    """Starts the services in order, each once the one before is healthy; False if a stop
    was asked for meanwhile."""
    for service in services:
        if stopping():
            return False
        service.start()
        try:
            service.wait_healthy()
        except RuntimeError:
            if not stopping():
                raise
            # Ctrl-C in a terminal reaches the whole process group: the child stopped too.
    return not stopping()


def main() -> None:
    settings = load_settings()
    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    data_dir = settings.data_dir
    providers, simulated = provider_choice(settings)
    with contextlib.ExitStack() as stack:
        redis_url = settings.redis_url or stack.enter_context(embedded_redis(data_dir / "redis"))
        database_url = settings.database_url
        if not database_url:
            server = stack.enter_context(embedded_postgres(data_dir / "postgres", keep_data=True))
            database_url = asyncio.run(create_database(server, "gateway", exist_ok=True))
        config = FleetConfig(
            redis_url=redis_url,
            database_url=database_url,
            data_dir=data_dir,
            edge_port=settings.port,
            auth_port=settings.auth_port,
            keyvault_port=settings.keyvault_port,
            worker_metrics_ports=tuple(
                (settings.metrics_port or WORKER_METRICS_BASE) + index
                for index in range(len(providers))
            ),
            audit_port=settings.audit_port,
            console_port=settings.console_port,
            simulator_port=settings.simulator_port if simulated else None,
            simulator_args=("--chunk-delay-ms", "20"),  # streams visibly token by token
            providers=providers,
            redis_prefix=settings.redis_prefix,
            log_dir=data_dir / "logs",
        )
        services = plan(config)
        status_path = data_dir / "fleet.json"
        stack.callback(status_path.unlink, missing_ok=True)
        stack.callback(stop_all, services)
        if start_all(services, lambda: stopping):
            supervisor = Supervisor(services, status_path, say)
            report(config, services)
            while not stopping:
                supervisor.check()
                time.sleep(0.2)
        say("Stopping the fleet...")
    say("Stopped.")


if __name__ == "__main__":
    main()
