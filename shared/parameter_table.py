"""The parameters each provider's models take: forwarded, translated or refused (the data).

docs/providers.md §10.1 prints this table with the page each rule comes from
(`tests/unit/test_parameter_table.py` keeps the two equal); `shared.parameters` enforces it.
Per provider, a rule for every parameter of a chat request, then model families (matched on the
whole model name) that change some of them. `forward`: sent as is; `translate`: sent in the
provider's own form (`becomes` says which); `refuse`: the provider would reject it or has
nothing for it. `values`, when set, are the only values the target takes (for
`response_format` and `thinking`, their `type`).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Support = Literal["forward", "translate", "refuse"]

# The parameters of `ChatRequest` that reach a provider's chat call (besides model and
# messages), in the groups docs/providers.md prints them in.
GROUPS: tuple[tuple[str, ...], ...] = (
    (
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "frequency_penalty",
        "presence_penalty",
        "stop",
        "seed",
        "n",
    ),
    (
        "logprobs",
        "top_logprobs",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
    ),
    (
        "reasoning_effort",
        "thinking",
        "thinking.budget_tokens",
        "user",
        "metadata",
        "store",
        "service_tier",
    ),
)
PARAMETERS = tuple(name for group in GROUPS for name in group)


@dataclass(frozen=True)
class Rule:
    support: Support
    becomes: str = ""
    values: tuple[str, ...] | None = None


FORWARD = Rule("forward")
REFUSE = Rule("refuse")
TEXT_AND_JSON = ("text", "json_object", "json_schema")


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
    """Every parameter forwarded, but those `changed` (`thinking_budget_tokens` stands for
    `thinking.budget_tokens`)."""
    named = {k.replace("thinking_budget", "thinking.budget"): v for k, v in changed.items()}
    unknown = set(named) - set(PARAMETERS)
    assert not unknown, unknown
    return MappingProxyType({name: named.get(name, FORWARD) for name in PARAMETERS})


def _family(name: str, pattern: str, **rules: Rule) -> Family:
    return Family(name, re.compile(pattern), MappingProxyType(rules))


def _refused(*names: str) -> dict[str, Rule]:
    return dict.fromkeys(names, REFUSE)


_XAI_REASONING = _refused("presence_penalty", "frequency_penalty", "stop")
# What no OpenAI-dialect provider here documents: OpenAI's stored completions and its tiers.
_OPENAI_ONLY = _refused("store", "service_tier")

TABLE: Mapping[str, ProviderRules] = MappingProxyType(
    {
        "anthropic": ProviderRules(
            _rules(
                **_refused(
                    "frequency_penalty",
                    "presence_penalty",
                    "seed",
                    "n",
                    "logprobs",
                    "top_logprobs",
                    "reasoning_effort",
                    "metadata",
                    "store",
                ),
                stop=Rule("translate", "stop_sequences"),
                response_format=Rule(
                    "translate", "a tool it must call, input_schema = the schema", TEXT_AND_JSON
                ),
                tools=Rule("translate", "tools[].input_schema"),
                tool_choice=Rule("translate", "tool_choice {type: auto, any, none, tool}"),
                parallel_tool_calls=Rule("translate", "tool_choice.disable_parallel_tool_use"),
                thinking=Rule("translate", "thinking {type}", ("enabled", "disabled")),
                thinking_budget_tokens=Rule("translate", "thinking.budget_tokens"),
                user=Rule("translate", "metadata.user_id"),
                service_tier=Rule("forward", values=("auto", "standard_only")),
            )
        ),
        "deepseek": ProviderRules(
            _rules(
                **_refused("top_k", "seed", "n", "user", "metadata", "thinking.budget_tokens"),
                **_OPENAI_ONLY,
                response_format=Rule("forward", values=("text", "json_object")),
                thinking=Rule("translate", "thinking {type}"),
            ),
            (
                _family(
                    "deepseek-reasoner",
                    r"deepseek-reasoner",
                    **_refused("logprobs", "top_logprobs"),
                ),
            ),
        ),
        "xai": ProviderRules(
            _rules(
                **_refused(
                    "top_k", "reasoning_effort", "thinking", "thinking.budget_tokens", "metadata"
                ),
                **_OPENAI_ONLY,
            ),
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
                **_refused("n", "metadata"),
                **_OPENAI_ONLY,
                reasoning_effort=Rule(
                    "translate",
                    "reasoning.effort",
                    ("xhigh", "high", "medium", "low", "minimal", "none"),
                ),
                thinking=Rule("translate", "reasoning.enabled"),
                thinking_budget_tokens=Rule("translate", "reasoning.max_tokens"),
            )
        ),
        "litellm": ProviderRules(
            _rules(**_refused("thinking", "thinking.budget_tokens"), **_OPENAI_ONLY)
        ),
        "nvidia_nim": ProviderRules(
            _rules(
                **_refused(
                    "reasoning_effort", "thinking", "thinking.budget_tokens", "user", "metadata"
                ),
                **_OPENAI_ONLY,
                top_k=Rule("translate", "nvext.top_k"),
                response_format=Rule("translate", "json_schema → nvext.guided_json", TEXT_AND_JSON),
            )
        ),
        "perplexity": ProviderRules(
            _rules(
                **_refused(
                    "seed",
                    "n",
                    "logprobs",
                    "top_logprobs",
                    "tools",
                    "tool_choice",
                    "parallel_tool_calls",
                    "reasoning_effort",
                    "thinking",
                    "thinking.budget_tokens",
                    "user",
                    "metadata",
                ),
                **_OPENAI_ONLY,
                response_format=Rule("forward", values=("text", "json_schema")),
            ),
            (
                _family(
                    "sonar-deep-research",
                    r"sonar-deep-research",
                    reasoning_effort=Rule("forward", values=("low", "medium", "high")),
                ),
            ),
        ),
        "huggingface": ProviderRules(
            _rules(
                **_refused(
                    "top_k",
                    "n",
                    "reasoning_effort",
                    "thinking",
                    "thinking.budget_tokens",
                    "user",
                    "metadata",
                ),
                **_OPENAI_ONLY,
                response_format=Rule("forward", values=("text", "json_object", "json_schema")),
            )
        ),
    }
)
