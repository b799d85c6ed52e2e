"""The providers the gateway serves: identity, wire dialect and where their settings live."""

from dataclasses import dataclass
from typing import Literal

Dialect = Literal["anthropic", "openai"]


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    dialect: Dialect
    default_base_url: str
    key_setting: str  # attribute of Settings holding the operator's key


PROVIDERS: dict[str, Provider] = {
    p.id: p
    for p in (
        Provider(
            "anthropic", "Anthropic", "anthropic", "https://api.anthropic.com", "anthropic_api_key"
        ),
        Provider("deepseek", "DeepSeek", "openai", "https://api.deepseek.com", "deepseek_api_key"),
    )
}
