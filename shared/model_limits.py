"""The most answer tokens (`max_tokens`) each known model may be asked for.

The figures are the providers' published maximum output tokens, keyed by (provider, model id)
as a request names them; a model served through a router (OpenRouter) is keyed under the
router. Only figures the providers publish are listed: any other model is bounded by the
operator's `MAX_OUTPUT_TOKENS` alone, which also caps every figure here.
"""

from types import MappingProxyType

MAX_OUTPUT_TOKENS_BY_MODEL: MappingProxyType[tuple[str, str], int] = MappingProxyType(
    {
        # Anthropic, https://docs.anthropic.com/en/docs/about-claude/models (ids and aliases).
        ("anthropic", "claude-opus-4-1-20250805"): 32_000,
        ("anthropic", "claude-opus-4-1"): 32_000,
        ("anthropic", "claude-sonnet-4-20250514"): 64_000,
        ("anthropic", "claude-sonnet-4-0"): 64_000,
        ("anthropic", "claude-3-5-sonnet-20241022"): 8_192,
        ("anthropic", "claude-3-5-sonnet-latest"): 8_192,
        ("anthropic", "claude-3-5-haiku-20241022"): 8_192,
        ("anthropic", "claude-3-5-haiku-latest"): 8_192,
        # DeepSeek, https://api-docs.deepseek.com/quick_start/pricing ("maximum" output).
        ("deepseek", "deepseek-chat"): 8_192,
        ("deepseek", "deepseek-reasoner"): 65_536,
        # OpenRouter serves the same models under its own ids.
        ("openrouter", "anthropic/claude-3-5-sonnet"): 8_192,
        ("openrouter", "openai/gpt-4o-mini"): 16_384,
    }
)


def max_output_tokens(provider: str, model: str, operator_cap: int) -> int:
    """The largest `max_tokens` a request to `provider`/`model` may ask for."""
    published = MAX_OUTPUT_TOKENS_BY_MODEL.get((provider, model))
    return operator_cap if published is None else min(published, operator_cap)
