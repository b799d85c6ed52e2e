"""A worker pool's HTTP port (`METRICS_PORT`), served from a thread of its own:

- `/health/live`: the process answers;
- `/health/ready`: it is connected to Redis and consuming its job stream, else 503 with the
  standard error envelope saying why; Kubernetes' readiness probe and `make run` wait for it;
- any other path: its Prometheus metrics (`/metrics`).
"""

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import orjson
from prometheus_client import CollectorRegistry, make_wsgi_app

from shared.errors import NotFoundError, ServiceUnavailable
from shared.ids import new_trace_id


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Probes come every few seconds: no access log line for each."""


def _json(start_response: StartResponse, status: str, body: object) -> Iterable[bytes]:
    start_response(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
    return [orjson.dumps(body)]


def probe_app(
    registry: CollectorRegistry | None, unready: Callable[[], str | None]
) -> WSGIApplication:
    """`unready()` says why the pool is not ready, None when it is; `registry` None: no
    metrics (ENABLE_METRICS=false), only the probes."""
    metrics = make_wsgi_app(registry) if registry is not None else None

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/health/live":
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == "/health/ready":
            reason = unready()
            if reason is None:
                return _json(start_response, "200 OK", {"status": "ok"})
            envelope = ServiceUnavailable(reason).envelope(new_trace_id())
            return _json(start_response, "503 Service Unavailable", envelope)
        if metrics is None:
            off = NotFoundError("Metrics are off (ENABLE_METRICS=false)")
            return _json(start_response, "404 Not Found", off.envelope(new_trace_id()))
        served: Iterable[bytes] = metrics(environ, start_response)
        return served

    return app


def serve_probes(host: str, port: int, app: WSGIApplication) -> None:
    """Serves `app` on host:port from a daemon thread, for the life of the process."""
    server_class = _Server6 if ":" in host else _Server
    server = make_server(host, port, app, server_class, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
