"""`python -m services.auth` serves the auth API; `... migrate` applies migrations and exits."""

import argparse
import asyncio

import uvicorn

from services.auth.main import create_app, migrate
from shared.logs import configure_logging
from shared.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.auth")
    parser.add_argument("command", nargs="?", choices=["serve", "migrate"], default="serve")
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging("auth", settings.log_level)
    if args.command == "migrate":
        asyncio.run(migrate(settings))
        return
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.auth_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
