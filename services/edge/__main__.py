"""`python -m services.edge`: serve the edge on `HOST:PORT`."""

import uvicorn

from shared.logs import configure_logging
from shared.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging("edge", settings.log_level)
    uvicorn.run(
        "services.edge.main:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
