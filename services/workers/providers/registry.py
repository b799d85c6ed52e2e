"""The adapter class for each wire dialect."""

from services.workers.providers.anthropic import AnthropicAdapter
from services.workers.providers.base import ProviderAdapter
from services.workers.providers.openai_dialect import OpenAIDialectAdapter
from shared.providers import Dialect

ADAPTERS: dict[Dialect, type[ProviderAdapter]] = {
    "anthropic": AnthropicAdapter,
    "openai": OpenAIDialectAdapter,
}
