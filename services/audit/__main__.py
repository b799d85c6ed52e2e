"""`python -m services.audit [serve|migrate|verify|rekey]`.

`verify` walks the keyed hash chain of the audit table (with `AUDIT_HMAC_KEYS`) and exits 1,
naming the first row that does not match, when a row was changed, removed or inserted outside
the audit service, or the newest rows were deleted; else it prints the chain's head (keep it
elsewhere: a later head must extend it). `rekey` re-chains every row under the newest key
version, after checking the chain as it stands (once after upgrading to a keyed chain, and
after adding a key version).
"""

import argparse
import asyncio
import sys

from services.audit.main import create_app, migrate, rekey_chain, verify_chain
from services.audit.rekey import ChainBroken
from shared.logs import configure_logging
from shared.serving import serve
from shared.settings import load_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.audit", description=__doc__)
    parser.add_argument(
        "command", nargs="?", choices=["serve", "migrate", "verify", "rekey"], default="serve"
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
        head = f", head seq={verdict.head[0]} hash={verdict.head[1]}" if verdict.head else ""
        sys.stdout.write(f"audit chain intact: {verdict.rows} rows{head}\n")
    elif args.command == "rekey":
        try:
            changed = asyncio.run(rekey_chain(settings))
        except ChainBroken as exc:
            sys.stderr.write(f"not re-chained: {exc}\n")
            sys.exit(1)
        sys.stdout.write(f"audit chain re-chained: {changed} rows\n")
    else:
        serve(create_app(settings), host=settings.host, port=settings.audit_port)


if __name__ == "__main__":
    main()
