"""The simulator app: every provider's routes plus the `/_sim` control endpoints."""

from fastapi import APIRouter, FastAPI, Request, Response

from services.simulator import anthropic_dialect, openai_dialect, retrieval_routes, wire
from services.simulator.config import SimulatorConfig
from services.simulator.gates import NAME, Gates
from services.simulator.prompt_cache import PromptCache
from services.simulator.recorder import AnswerRecorder, Recorder
from services.simulator.registry import OPENAI_PROFILES


def _control_router() -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    async def health() -> Response:
        return wire.json_response({"status": "ok"})

    @router.get("/_sim/requests")
    async def requests(request: Request, trace_id: str | None = None) -> Response:
        recorder: Recorder = request.app.state.recorder
        return wire.json_response({"requests": [r.as_json() for r in recorder.find(trace_id)]})

    @router.get("/_sim/holds/{name}")
    async def holds(request: Request, name: str) -> Response:
        gates: Gates = request.app.state.gates
        return wire.json_response({"waiting": gates.waiting(name)})

    @router.post("/_sim/release/{name}")
    async def release(request: Request, name: str) -> Response:
        if not NAME.match(name):
            return wire.json_response({"error": "bad gate name"}, 400)
        gates: Gates = request.app.state.gates
        gates.release(name)
        return Response(status_code=204)

    @router.delete("/_sim/requests")
    async def clear(request: Request) -> Response:
        recorder: Recorder = request.app.state.recorder
        recorder.clear()
        return Response(status_code=204)

    return router


def create_app(config: SimulatorConfig | None = None) -> FastAPI:
    config = config or SimulatorConfig()
    app = FastAPI(title="provider simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.config = config
    app.state.recorder = Recorder(config.record_limit)
    app.state.pending = retrieval_routes.PendingAnswers()
    app.state.prompt_cache = PromptCache()
    app.state.gates = Gates()
    app.include_router(_control_router())
    app.include_router(anthropic_dialect.build_router())
    for profile in OPENAI_PROFILES:
        app.include_router(openai_dialect.build_router(profile))
    app.include_router(retrieval_routes.build_router())
    app.add_middleware(AnswerRecorder)
    return app
