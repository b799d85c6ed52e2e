"""`python -m services.simulator --port N`: serve the provider simulator with uvicorn."""

import argparse
import logging

import uvicorn

from services.simulator.app import create_app
from services.simulator.config import SimulatorConfig
from shared.logs import configure_logging
from shared.settings import load_settings

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m services.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: SIMULATOR_PORT")
    parser.add_argument("--tokens", type=int, default=defaults.tokens)
    parser.add_argument("--reasoning-tokens", type=int, default=defaults.reasoning_tokens)
    parser.add_argument("--latency-ms", type=int, default=defaults.latency_ms)
    parser.add_argument("--chunk-delay-ms", type=int, default=defaults.chunk_delay_ms)
    parser.add_argument("--keepalive-ms", type=int, default=defaults.keepalive_ms)
    parser.add_argument("--record-limit", type=int, default=defaults.record_limit)
    parser.add_argument(
        "--api-keys",
        default=",".join(defaults.api_keys),
        help="comma-separated keys accepted besides those the simulator issued",
    )
    parser.add_argument("--log-level", default=None, help="default: LOG_LEVEL")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = load_settings()
    config = SimulatorConfig(
        tokens=args.tokens,
        reasoning_tokens=args.reasoning_tokens,
        latency_ms=args.latency_ms,
        chunk_delay_ms=args.chunk_delay_ms,
        keepalive_ms=args.keepalive_ms,
        record_limit=args.record_limit,
        api_keys=tuple(k for k in args.api_keys.split(",") if k),
    )
    configure_logging("simulator", args.log_level or settings.log_level)
    port = args.port if args.port is not None else settings.simulator_port
    logger.info("simulator listening on %s:%d", args.host, port)
    uvicorn.run(create_app(config), host=args.host, port=port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
