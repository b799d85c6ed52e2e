"""`python -m services.console`: the web console on `CONSOLE_PORT`, calling the edge at
`EDGE_URL`."""

from services.console.main import create_app
from shared.logs import configure_logging
from shared.serving import serve
from shared.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging("console", settings.log_level)
    serve(create_app(settings), host=settings.host, port=settings.console_port)


if __name__ == "__main__":
    main()
