"""`python -m shared.healthcheck`: the container image's HEALTHCHECK, for whichever service
the container runs. Exits 0 when a service of the fleet answers `GET /health/live` with 200 on
this host: the edge on PORT, auth, keyvault or audit on their ports, or a worker pool on
METRICS_PORT. A container runs one service, so the first that answers is its own; the others'
ports are closed and refuse at once. Exits 1 naming what it tried otherwise.
"""

import sys
import urllib.error
import urllib.request

from shared.settings import Settings

TIMEOUT_SECONDS = 3.0
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def live_urls(settings: Settings) -> list[str]:
    host = _WILDCARDS.get(settings.host, settings.host)
    host = f"[{host}]" if ":" in host else host
    ports = [settings.port, settings.auth_port, settings.keyvault_port, settings.audit_port]
    if settings.metrics_port:
        ports.append(settings.metrics_port)
    return [f"http://{host}:{port}/health/live" for port in ports]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def main() -> int:
    urls = live_urls(Settings())
    if any(answers(url) for url in urls):
        return 0
    sys.stderr.write(f"no service answered: {', '.join(urls)}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
