"""`python -m services.edge`: serve the edge on `HOST:PORT`."""

import os
import shutil
import tempfile

from shared.logs import configure_logging
from shared.serving import serve
from shared.settings import Settings, load_settings


def share_metrics_between_processes(processes: int) -> str | None:
    """Several processes on one port: each writes its metrics to files in one folder and a
    scrape of any of them sums all (prometheus-client's multiprocess mode). Returns the
    folder this call made."""
    if processes == 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    folder = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    return folder


def main() -> None:
    settings = load_settings()
    configure_logging("edge", settings.log_level)
    folder = share_metrics_between_processes(settings.edge_processes)
    try:
        serve_edge(settings)
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def serve_edge(settings: Settings) -> None:
    serve(
        "services.edge.main:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=10,
        workers=settings.edge_processes,
    )


if __name__ == "__main__":
    main()
