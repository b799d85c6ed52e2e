"""The providers the gateway serves: identity, wire dialect, capabilities, where settings live."""

from dataclasses import dataclass
from typing import Literal

Dialect = Literal["anthropic", "openai"]
Capability = Literal[
    "chat", "vision", "function-calling", "reasoning", "web-search", "embeddings", "rerank"
]


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    dialect: Dialect
    default_base_url: str
    key_setting: str  # attribute of Settings holding the operator's key
    capabilities: tuple[Capability, ...]

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities


PROVIDERS: dict[str, Provider] = {
    p.id: p
    for p in (
        Provider(
            "anthropic",
            "Anthropic",
            "anthropic",
            "https://api.anthropic.com",
            "anthropic_api_key",
            ("chat", "vision", "function-calling"),
        ),
        Provider(
            "deepseek",
            "DeepSeek",
            "openai",
            "https://api.deepseek.com",
            "deepseek_api_key",
            ("chat", "function-calling", "reasoning"),
        ),
        Provider(
            "xai",
            "xAI",
            "openai",
            "https://api.x.ai/v1",
            "xai_api_key",
            ("chat", "vision", "function-calling", "reasoning"),
        ),
        Provider(
            "openrouter",
            "OpenRouter",
            "openai",
            "https://openrouter.ai/api/v1",
            "openrouter_api_key",
            ("chat", "vision", "function-calling", "reasoning", "embeddings"),
        ),
        Provider(
            "litellm",
            "LiteLLM",
            "openai",
            "http://localhost:4000",
            "litellm_api_key",
            ("chat", "function-calling", "embeddings", "rerank"),
        ),
        Provider(
            "nvidia_nim",
            "NVIDIA NIM",
            "openai",
            "https://integrate.api.nvidia.com/v1",
            "nvidia_nim_api_key",
            ("chat", "function-calling", "embeddings", "rerank"),
        ),
        Provider(
            "perplexity",
            "Perplexity",
            "openai",
            "https://api.perplexity.ai",
            "perplexity_api_key",
            ("chat", "web-search", "reasoning"),
        ),
        Provider(
            "huggingface",
            "Hugging Face",
            "openai",
            "https://router.huggingface.co",
            "hf_token",
            ("chat", "function-calling", "embeddings", "rerank"),
        ),
    )
}
