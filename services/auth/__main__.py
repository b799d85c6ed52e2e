"""`python -m services.auth` serves the auth API; `... migrate` applies migrations and exits;
`... make-admin EMAIL` gives an existing user the admin role."""

import argparse
import asyncio
import sys

from services.auth.admin_command import make_admin
from services.auth.main import create_app, migrate
from shared.logs import configure_logging
from shared.serving import serve
from shared.settings import load_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.auth")
    parser.add_argument(
        "command", nargs="?", choices=["serve", "migrate", "make-admin"], default="serve"
    )
    parser.add_argument("email", nargs="?", help="make-admin: the user's email")
    args = parser.parse_args(argv)
    if args.command == "make-admin" and not args.email:
        parser.error("make-admin needs the user's EMAIL")

    settings = load_settings()
    configure_logging("auth", settings.log_level)
    if args.command == "migrate":
        asyncio.run(migrate(settings))
        return
    if args.command == "make-admin":
        sys.exit(0 if asyncio.run(make_admin(settings, args.email)) else 1)
    serve(create_app(settings), host=settings.host, port=settings.auth_port)


if __name__ == "__main__":
    main()
