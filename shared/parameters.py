"""Which chat parameters each provider's models take: forwarded, translated or refused.

The one table of it (docs/providers.md §10.1 prints it with the page each rule comes from).
Per provider, the rules for every parameter of a chat request, then model families (matched
on the whole model name) that change some of them. `forward`: sent as is; `translate`: sent in
the provider's own form (`becomes` says which); `refuse`: the provider would reject it or has
nothing for it, so the request gets our 400 naming the parameter instead of an upstream error
or a silent drop. `values`, when set, are the only values the target takes.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from shared.errors import InvalidRequest
from shared.providers import PROVIDERS
from shared.schemas import ChatRequest

Support = Literal["forward", "translate", "refuse"]

# The parameters of `ChatRequest` that reach a provider's chat call (besides model, messages).
PARAMETERS = (
    "temperature",
    "top_p",
    "max_tokens",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning_effort",
    "thinking",
)


@dataclass(frozen=True)
class Rule:
    support: Support
    becomes: str = ""
    values: tuple[str, ...] | None = None


FORWARD = Rule("forward")
REFUSE = Rule("refuse")


@dataclass(frozen=True)
class Family:
    """Models of one provider whose parameters differ from the provider's own rules."""

    name: str
    pattern: re.Pattern[str]
    rules: Mapping[str, Rule]


@dataclass(frozen=True)
class ProviderRules:
    rules: Mapping[str, Rule]
    families: tuple[Family, ...] = field(default=())

    def with_family(self, family: Family) -> Mapping[str, Rule]:
        return {**self.rules, **family.rules}

    def for_model(self, model: str) -> Mapping[str, Rule]:
        for family in self.families:
            if family.pattern.fullmatch(model):
                return self.with_family(family)
        return self.rules


def _rules(**changed: Rule) -> Mapping[str, Rule]:
    """Every parameter forwarded, but those `changed`."""
    unknown = set(changed) - set(PARAMETERS)
    assert not unknown, unknown
    return MappingProxyType({name: changed.get(name, FORWARD) for name in PARAMETERS})


def _family(name: str, pattern: str, **rules: Rule) -> Family:
    return Family(name, re.compile(pattern), MappingProxyType(rules))


_XAI_REASONING = {
    "presence_penalty": REFUSE,
    "frequency_penalty": REFUSE,
    "stop": REFUSE,
}

TABLE: Mapping[str, ProviderRules] = MappingProxyType(
    {
        "anthropic": ProviderRules(
            _rules(
                frequency_penalty=REFUSE,
                presence_penalty=REFUSE,
                stop=Rule("translate", "stop_sequences"),
                tools=Rule("translate", "tools[].input_schema"),
                tool_choice=Rule("translate", "tool_choice {type: auto, any, none, tool}"),
                parallel_tool_calls=Rule("translate", "tool_choice.disable_parallel_tool_use"),
                reasoning_effort=REFUSE,
                # Enabling needs a token budget, which the native API does not carry.
                thinking=Rule("translate", "thinking {type}", ("disabled",)),
            )
        ),
        "deepseek": ProviderRules(
            _rules(thinking=Rule("translate", "thinking {type}")),
        ),
        "xai": ProviderRules(
            _rules(reasoning_effort=REFUSE, thinking=REFUSE),
            (
                _family(
                    "grok-3-mini*",
                    r"grok-3-mini.*",
                    **_XAI_REASONING,
                    reasoning_effort=Rule("forward", values=("low", "high")),
                ),
                _family(
                    "grok-4*, grok-code* but *non-reasoning",
                    r"grok-(?:4|code)(?!.*non-reasoning).*",
                    **_XAI_REASONING,
                ),
            ),
        ),
        "openrouter": ProviderRules(
            _rules(
                reasoning_effort=Rule(
                    "translate",
                    "reasoning.effort",
                    ("xhigh", "high", "medium", "low", "minimal", "none"),
                ),
                thinking=Rule("translate", "reasoning.enabled"),
            )
        ),
        "litellm": ProviderRules(_rules(thinking=REFUSE)),
        "nvidia_nim": ProviderRules(_rules(reasoning_effort=REFUSE, thinking=REFUSE)),
        "perplexity": ProviderRules(
            _rules(
                tools=REFUSE,
                tool_choice=REFUSE,
                parallel_tool_calls=REFUSE,
                reasoning_effort=REFUSE,
                thinking=REFUSE,
            ),
            (
                _family(
                    "sonar-deep-research",
                    r"sonar-deep-research",
                    reasoning_effort=Rule("forward", values=("low", "medium", "high")),
                ),
            ),
        ),
        "huggingface": ProviderRules(_rules(reasoning_effort=REFUSE, thinking=REFUSE)),
    }
)


def _value(request: ChatRequest, name: str) -> Any:
    value = getattr(request, name)
    return value.type if name == "thinking" and value is not None else value


def check(request: ChatRequest, provider: str, model: str) -> None:
    """A 400 naming the first parameter of `request` that `provider`'s `model` refuses, or a
    value it does not take. Unknown providers are left to the provider check."""
    table = TABLE.get(provider)
    if table is None:
        return
    rules = table.for_model(model)
    name = PROVIDERS[provider].name
    for parameter in PARAMETERS:
        value = _value(request, parameter)
        if value is None:
            continue
        rule = rules[parameter]
        details: dict[str, Any] = {"provider": provider, "model": model, "parameter": parameter}
        if rule.support == "refuse":
            raise InvalidRequest(
                f"{name} model '{model}' does not take '{parameter}'", details=details
            )
        if rule.values is not None and value not in rule.values:
            raise InvalidRequest(
                f"{name} model '{model}' takes '{parameter}' only as one of "
                f"{', '.join(rule.values)}; got '{value}'",
                details=details | {"allowed": list(rule.values)},
            )
