"""`GET /api/v1/providers`: every provider, whether it answers, its models and capabilities."""

from fastapi import APIRouter

from services.edge.deps import AdmittedCallerDep, ComponentsDep
from shared.schemas import ProvidersResponse

router = APIRouter()


@router.get("/api/v1/providers", response_model=ProvidersResponse, tags=["providers"])
async def providers(_caller: AdmittedCallerDep, edge: ComponentsDep) -> ProvidersResponse:
    return await edge.catalogue.listing()
