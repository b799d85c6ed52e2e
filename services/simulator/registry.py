"""The OpenAI-dialect providers the simulator serves; adding one is one entry here."""

from services.simulator.openai_dialect import OpenAIProfile

DEEPSEEK = OpenAIProfile(
    id="deepseek",
    models=("deepseek-chat", "deepseek-reasoner"),
    reasoning_models=frozenset({"deepseek-reasoner"}),
    keepalive_comments=True,
    blank_line_preamble=True,
    cache_usage=True,
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

OPENAI_PROFILES: tuple[OpenAIProfile, ...] = (DEEPSEEK,)
