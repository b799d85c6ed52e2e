"""`python -m services.audit [serve|migrate|verify]`.

`verify` walks the hash chain of the audit table and exits 1, naming the first row that does
not match, when a row was changed, removed or inserted outside the audit service.
"""

import argparse
import asyncio
import sys

from services.audit.main import create_app, migrate, verify_chain
from shared.logs import configure_logging
from shared.serving import serve
from shared.settings import load_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.audit", description=__doc__)
    parser.add_argument(
        "command", nargs="?", choices=["serve", "migrate", "verify"], default="serve"
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging("audit", settings.log_level)
    if args.command == "migrate":
        asyncio.run(migrate(settings))
    elif args.command == "verify":
        verdict = asyncio.run(verify_chain(settings))
        if verdict.broken is not None:
            sys.stderr.write(verdict.broken.describe() + "\n")
            sys.exit(1)
        sys.stdout.write(f"audit chain intact: {verdict.rows} rows\n")
    else:
        serve(create_app(settings), host=settings.host, port=settings.audit_port)


if __name__ == "__main__":
    main()
