"""The load test's provider mix: providers by weight, each with a chat model it serves.

Imported by the Locust user file too, so it imports nothing that gevent's monkey-patching
would break (no asyncio).
"""

MODELS = {
    "anthropic": "claude-sonnet-4-20250514",
    "deepseek": "deepseek-chat",
    "xai": "grok-3",
    "openrouter": "openai/gpt-4o-mini",
    "litellm": "gpt-4o-mini",
    "nvidia_nim": "meta/llama-3.3-70b-instruct",
    "perplexity": "sonar",
    "huggingface": "meta-llama/Llama-3.1-8B-Instruct",
}


def parse_mix(text: str) -> dict[str, int]:
    """`deepseek:3,anthropic:1` -> {"deepseek": 3, "anthropic": 1}; no `:N` weighs 1."""
    mix: dict[str, int] = {}
    for part in text.split(","):
        name, _, weight = part.strip().partition(":")
        weight = weight or "1"
        if name not in MODELS:
            raise ValueError(f"unknown provider {name!r} (one of {', '.join(MODELS)})")
        if not weight.isdigit() or int(weight) < 1:
            raise ValueError(f"the weight of {name} must be a whole number >= 1")
        mix[name] = int(weight)
    return mix


def format_mix(mix: dict[str, int]) -> str:
    return ",".join(f"{name}:{weight}" for name, weight in mix.items())
