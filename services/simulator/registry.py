"""The OpenAI-dialect providers the simulator serves; adding one is one entry here."""

from types import MappingProxyType

from services.simulator.openai_profile import OpenAIProfile

DEEPSEEK = OpenAIProfile(
    id="deepseek",
    json_types=("text", "json_object"),
    models=("deepseek-chat", "deepseek-reasoner"),
    reasoning_models=frozenset({"deepseek-reasoner"}),
    keepalive=b": keep-alive\n\n",
    preamble="latency",
    cache_usage=True,
    thinking_switch=True,
    auth_message="Authentication Fails, Your api key: {key} is invalid",
    extra_get={
        "user/balance": {
            "is_available": True,
            "balance_infos": [
                {
                    "currency": "USD",
                    "total_balance": "10.00",
                    "granted_balance": "0.00",
                    "topped_up_balance": "10.00",
                }
            ],
        }
    },
)

XAI = OpenAIProfile(
    id="xai",
    multiple_choices=True,
    models=("grok-4-1-fast-reasoning", "grok-4-1-fast-non-reasoning", "grok-3-mini", "grok-3"),
    reasoning_models=frozenset({"grok-4-1-fast-reasoning", "grok-3-mini"}),
    # Only grok-3-mini shows its reasoning in Chat Completions; the others count it in usage.
    silent_reasoning_models=frozenset({"grok-4-1-fast-reasoning"}),
    reasoning_limits={"grok-3-mini": ("low", "high")},
    reasoning_rejects=("presence_penalty", "frequency_penalty", "stop"),
    usage_style="xai",
    chunk_style="xai",
    error_style="xai",
    envelope_extra={"system_fingerprint": "fp_sim0001"},
    extra_get={
        "api-key": {
            "redacted_api_key": "xai-...sim0",
            "user_id": "sim-user",
            "name": "simulator key",
            "create_time": "2025-01-01T00:00:00Z",
            "modify_time": "2025-01-01T00:00:00Z",
            "modified_by": "sim-user",
            "team_id": "sim-team",
            "acls": ["api-key:model:*", "api-key:endpoint:*"],
            "api_key_id": "sim-key-id",
            "team_blocked": False,
            "api_key_blocked": False,
            "api_key_disabled": False,
        }
    },
)

_OPENROUTER_KEY = {
    "data": {
        "label": "sk-or-v1-sim...",
        "usage": 0.0,
        "limit": None,
        "limit_remaining": None,
        "is_free_tier": False,
        "rate_limit": {"requests": 20, "interval": "10s"},
    }
}
OPENROUTER = OpenAIProfile(
    id="openrouter",
    models=(
        "anthropic/claude-3-5-sonnet",
        "google/gemini-2.0-flash-exp",
        "openai/gpt-4o-mini",
        "deepseek/deepseek-r1",
    ),
    reasoning_models=frozenset({"deepseek/deepseek-r1"}),
    reasoning_field="reasoning",
    reasoning_object=("xhigh", "high", "medium", "low", "minimal", "none"),
    keepalive=b": OPENROUTER PROCESSING\n\n",
    preamble="always",
    usage_style="openrouter",
    error_style="openrouter",
    auth_message="User not found.",
    envelope_extra={"provider": "SimProvider"},
    native_finish_reason=True,
    public_models=True,
    extra_get={"key": _OPENROUTER_KEY, "auth/key": _OPENROUTER_KEY},
)

LITELLM = OpenAIProfile(
    id="litellm",
    multiple_choices=True,
    models=("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "text-embedding-3-small", "rerank"),
    error_style="litellm",
    auth_message="Authentication Error, Invalid proxy server token passed. key={key}",
    extra_get={
        "key/info": {
            "key": "sim",
            "info": {"key_alias": "simulator", "spend": 0.0, "max_budget": None, "models": []},
        }
    },
)

NVIDIA_NIM = OpenAIProfile(
    id="nvidia_nim",
    multiple_choices=True,
    models=(
        "nvidia/llama-3.3-70b-instruct",
        "meta/llama-3.3-70b-instruct",
        "nvidia/nv-embedqa-e5-v5",
        "nvidia/llama-3.2-nv-rerankqa-1b-v2",
    ),
    error_style="nim",
    auth_message="Authentication failed",
)

PERPLEXITY = OpenAIProfile(
    id="perplexity",
    json_types=("text", "json_schema", "regex"),
    models=("sonar", "sonar-pro", "sonar-reasoning-pro", "sonar-deep-research"),
    reasoning_models=frozenset({"sonar-reasoning-pro", "sonar-deep-research"}),
    think_tags=True,
    research_models=frozenset({"sonar-deep-research"}),
    usage_style="perplexity",
    chunk_style="perplexity",
    error_style="perplexity",
    done_marker=False,
)

_HF_PROVIDER = {
    "provider": "together",
    "status": "live",
    "context_length": 131072,
    "pricing": {"input": 0.2, "output": 0.6},
    "supports_tools": True,
    "supports_structured_output": True,
    "is_model_author": False,
}
HUGGINGFACE = OpenAIProfile(
    id="huggingface",
    models=(
        "together/deepseek-ai/DeepSeek-R1",
        "deepseek-ai/DeepSeek-R1",
        "meta-llama/Llama-3.1-8B-Instruct",
        "BAAI/bge-large-en-v1.5",
    ),
    reasoning_models=frozenset({"together/deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-R1"}),
    error_style="hf",
    auth_message="Invalid credentials in Authorization header",
    model_extra={
        "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
        "providers": [_HF_PROVIDER],
    },
)

OPENAI_PROFILES: tuple[OpenAIProfile, ...] = (
    DEEPSEEK,
    XAI,
    OPENROUTER,
    LITELLM,
    NVIDIA_NIM,
    PERPLEXITY,
    HUGGINGFACE,
)
PROFILES_BY_ID = MappingProxyType({profile.id: profile for profile in OPENAI_PROFILES})
