"""`python -m services.keyvault [serve|migrate|rotate]`.

`rotate` re-seals every stored key under the newest master key while the service keeps
serving; list the new key last in KEYVAULT_MASTER_KEYS, run it, then drop the old version.
"""

import argparse
import asyncio

from services.keyvault.main import create_app, migrate, open_vault
from shared.logs import configure_logging
from shared.serving import serve
from shared.settings import Settings, load_settings


async def rotate(settings: Settings) -> int:
    await migrate(settings)
    async with open_vault(settings) as vault:
        return await vault.rotate()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.keyvault", description=__doc__)
    parser.add_argument(
        "command", nargs="?", choices=["serve", "migrate", "rotate"], default="serve"
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging("keyvault", settings.log_level)
    if args.command == "migrate":
        asyncio.run(migrate(settings))
    elif args.command == "rotate":
        asyncio.run(rotate(settings))
    else:
        serve(create_app(settings), host=settings.host, port=settings.keyvault_port)


if __name__ == "__main__":
    main()
