"""What a chat's target does with each of its parameters, enforced (the table:
`shared.parameter_table`, printed in docs/providers.md §10.1).

A parameter the target cannot honour is refused with a 400 naming it, before anything is
queued; with `drop_params` (per request, or the `DROP_PARAMS` setting) it is taken off the
request instead and named in the response's `X-Dropped-Params`. Nothing is dropped in silence.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.errors import InvalidRequest
from shared.identifiers import quoted
from shared.parameter_table import PARAMETERS, TABLE
from shared.providers import PROVIDERS
from shared.schemas import ChatRequest

__all__ = ["PARAMETERS", "Refusal", "check", "enforce", "refusals"]


def _by_field() -> dict[str, list[tuple[int, str]]]:
    """The table's parameters (with their place in it) by the request field that holds them."""
    found: dict[str, list[tuple[int, str]]] = {}
    for place, parameter in enumerate(PARAMETERS):
        found.setdefault(parameter.partition(".")[0], []).append((place, parameter))
    return found


_OF_FIELD = _by_field()


@dataclass(frozen=True)
class Refusal:
    """One parameter a target does not take: the error it would answer, when not dropped."""

    parameter: str
    error: InvalidRequest


def _value(request: ChatRequest, name: str) -> Any:
    """The parameter's value as the table judges it; None when unset or at its neutral value
    (one choice, no log probabilities, nothing stored)."""
    if name == "thinking.budget_tokens":
        return request.thinking.budget_tokens if request.thinking is not None else None
    value = getattr(request, name)
    if value is None:
        return None
    if name in ("thinking", "response_format"):
        return value.type
    if (name == "n" and value == 1) or (name in ("logprobs", "store") and value is False):
        return None
    return value


def refusals(request: ChatRequest, provider: str, model: str) -> list[Refusal]:
    """Each parameter of `request` that `provider`'s `model` refuses, or takes only with other
    values. Unknown providers are left to the provider check."""
    table = TABLE.get(provider)
    if table is None:
        return []
    rules = table.for_model(model)
    name = PROVIDERS[provider].name
    found = []
    # A request names a few of the parameters: only those are judged, in the table's order.
    named = sorted(p for f in request.model_fields_set for p in _OF_FIELD.get(f, ()))
    for _, parameter in named:
        value = _value(request, parameter)
        if value is None:
            continue
        rule = rules[parameter]
        details: dict[str, Any] = {
            "provider": provider,
            "model": quoted(model),
            "parameter": parameter,
        }
        if rule.support == "refuse":
            message = f"{name} model '{quoted(model)}' does not take '{parameter}'"
            found.append(Refusal(parameter, InvalidRequest(message, details=details)))
        elif rule.values is not None and value not in rule.values:
            message = (
                f"{name} model '{quoted(model)}' takes '{parameter}' only as one of "
                f"{', '.join(rule.values)}; got '{value}'"
            )
            error = InvalidRequest(message, details=details | {"allowed": list(rule.values)})
            found.append(Refusal(parameter, error))
    return found


def check(request: ChatRequest, provider: str, model: str) -> None:
    """A 400 naming the first parameter of `request` that `provider`'s `model` refuses."""
    if found := refusals(request, provider, model):
        raise found[0].error


def _without(request: ChatRequest, names: set[str]) -> ChatRequest:
    update: dict[str, Any] = {name: None for name in names if "." not in name}
    if "thinking.budget_tokens" in names and "thinking" not in names and request.thinking:
        update["thinking"] = request.thinking.model_copy(update={"budget_tokens": None})
    return request.model_copy(update=update)


def enforce(
    request: ChatRequest, targets: Iterable[tuple[str, str]], drop: bool
) -> tuple[ChatRequest, list[str]]:
    """The request every target can take, and the parameters dropped for it (in table
    order). Without `drop`, the first refusal of any target is raised."""
    refused: set[str] = set()
    for provider, model in targets:
        for refusal in refusals(request, provider, model):
            if not drop:
                raise refusal.error
            refused.add(refusal.parameter)
    if request.drop_params is not None:
        request = request.model_copy(update={"drop_params": None})
    if not refused:
        return request, []
    return _without(request, refused), [p for p in PARAMETERS if p in refused]
