"""What every route that runs a provider job checks before it admits and enqueues, in one order.

The request is noted for the audit record, then its size is checked against the operator's
caps (`caps.py`), a chat's parameters against what each of its targets takes
(`shared.parameters`: refused, or dropped and named in `X-Dropped-Params` when the caller or
the operator asks for that), then each target it may go to (a chat's model and every
fallback): the provider (known: the request's schema checked it) offers what is asked, the
caller may use it (a gateway API key may be limited to some providers and models), and the
provider lists the model (`catalogue.py`). A chat comes back as it will be sent.
"""

from typing import TypeVar, cast

from fastapi import Request

from services.edge import caps
from services.edge.audit import note
from services.edge.auth import Principal
from services.edge.deps import Components
from shared import parameters
from shared.errors import AuthorizationError, InvalidRequest
from shared.http import add_response_headers
from shared.identifiers import quoted
from shared.providers import PROVIDERS, Capability
from shared.schemas import ChatRequest, EmbeddingsRequest, RerankRequest
from shared.settings import Settings

JobRequest = ChatRequest | EmbeddingsRequest | RerankRequest
Checked = TypeVar("Checked", bound=JobRequest)
_YES = frozenset({"1", "true", "yes"})


def drops_params(settings: Settings, request: Request, asked: bool | None) -> bool:
    """The caller's `drop_params` (`asked` in the body, else the `X-Drop-Params` header), else
    the operator's `DROP_PARAMS`."""
    if asked is not None:
        return asked
    header = request.headers.get("x-drop-params")
    if header is not None:
        return header.strip().lower() in _YES
    return settings.drop_params


def note_dropped(request: Request, names: list[str]) -> None:
    """Names `names` among the parameters dropped for this request (`X-Dropped-Params`)."""
    if not names:
        return
    dropped: list[str] = getattr(request.state, "dropped_params", [])
    request.state.dropped_params = dropped = [*dropped, *names]
    add_response_headers(request, {"X-Dropped-Params": ", ".join(dropped)})


async def precheck(edge: Components, request: Request, caller: Principal, body: Checked) -> Checked:
    note(request, provider=body.provider, model=body.model)
    targets = [(body.provider, body.model)]
    checked: JobRequest = body
    capability: Capability
    if isinstance(body, ChatRequest):
        caps.check_chat(edge.settings, body)
        targets += caps.fallback_targets(body)
        drop = drops_params(edge.settings, request, body.drop_params)
        checked, dropped = parameters.enforce(body, targets, drop)
        note_dropped(request, dropped)
        capability = "chat"
    elif isinstance(body, EmbeddingsRequest):
        caps.check_embeddings(edge.settings, body)
        capability = "embeddings"
    else:
        caps.check_rerank(edge.settings, body)
        capability = "rerank"
    for provider, model in targets:
        check_provider(provider, capability)
        check_access(caller, provider, model)
        await edge.catalogue.check(provider, model, capability)
    return cast(Checked, checked)


def check_provider(provider: str, capability: Capability) -> None:
    """The provider (known: the schema checked it, shared/identifiers.py) offers `capability`."""
    if not PROVIDERS[provider].can(capability):
        able = sorted(p.id for p in PROVIDERS.values() if p.can(capability))
        raise InvalidRequest(
            f"Provider '{provider}' does not offer {capability}",
            details={"provider": provider, "capability": capability, "available_providers": able},
        )


def check_access(caller: Principal, provider: str, model: str) -> None:
    """A gateway API key may be limited to some providers and models."""
    if caller.allowed_providers is not None and provider not in caller.allowed_providers:
        raise AuthorizationError(
            f"This API key may not use provider '{quoted(provider)}'",
            details={"allowed_providers": list(caller.allowed_providers)},
        )
    if caller.allowed_models is not None and model not in caller.allowed_models:
        raise AuthorizationError(
            f"This API key may not use model '{quoted(model)}'",
            details={"allowed_models": list(caller.allowed_models)},
        )
