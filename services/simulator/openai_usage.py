"""Usage objects in each provider's semantics, and Perplexity's citation fields."""

import hashlib
from typing import Any

from services.simulator.openai_profile import OpenAIProfile
from services.simulator.replies import Reply

PRICE_PER_TOKEN = 0.000001
# A research answer reads its sources: tokens billed apart from the prompt (Perplexity).
CITATION_TOKENS_PER_QUERY = 40
RESEARCH_QUERIES = 3


def usage(
    profile: OpenAIProfile, reply: Reply, output_tokens: int, reasoning: bool, body: dict[str, Any]
) -> dict[str, Any]:
    """`output_tokens` excludes reasoning; xAI and Perplexity's research models also leave
    reasoning out of completion."""
    reasoning_tokens = len(reply.reasoning_pieces) if reasoning else 0
    if profile.usage_style == "perplexity":
        return _perplexity(profile, reply, output_tokens, reasoning_tokens, body)
    completion = output_tokens + reasoning_tokens
    total = reply.prompt_tokens + completion
    if profile.usage_style == "xai":
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": total,
            "prompt_tokens_details": {
                "text_tokens": reply.prompt_tokens,
                "audio_tokens": 0,
                "image_tokens": 0,
                "cached_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
            "num_sources_used": 0,
        }
    result: dict[str, Any] = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": total,
    }
    if profile.cache_usage:
        result["prompt_tokens_details"] = {"cached_tokens": reply.cache_read}
        result["prompt_cache_hit_tokens"] = reply.cache_read
        result["prompt_cache_miss_tokens"] = reply.prompt_tokens - reply.cache_read
    if reasoning:
        result["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    if profile.usage_style == "openrouter":
        result["cost"] = round(total * PRICE_PER_TOKEN, 9)
        result["is_byok"] = False
        result["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        result["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return result


def _perplexity(
    profile: OpenAIProfile, reply: Reply, output: int, reasoning: int, body: dict[str, Any]
) -> dict[str, Any]:
    """Reasoning shown in the content counts as completion; a research model's reasoning and
    the citations it read are reported apart, outside `total_tokens`."""
    research = body["model"] in profile.research_models
    citations = CITATION_TOKENS_PER_QUERY * RESEARCH_QUERIES if research else 0
    completion = output if research else output + reasoning
    options = body.get("web_search_options")
    size = options.get("search_context_size") if isinstance(options, dict) else None
    request_cost = 0.005
    total = reply.prompt_tokens + completion
    billed = total + citations + (reasoning if research else 0)
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": total,
        "search_context_size": size if isinstance(size, str) else "low",
        "citation_tokens": citations,
        "num_search_queries": RESEARCH_QUERIES if research else 1,
        "reasoning_tokens": reasoning if research else 0,
        "cost": {
            "input_tokens_cost": round(reply.prompt_tokens * PRICE_PER_TOKEN, 9),
            "output_tokens_cost": round(completion * PRICE_PER_TOKEN, 9),
            "request_cost": request_cost,
            "total_cost": round(billed * PRICE_PER_TOKEN + request_cost, 9),
        },
    }


def citation_fields(seed: bytes) -> dict[str, Any]:
    """Two deterministic sources: `citations` URLs and the matching `search_results`."""
    digest = hashlib.sha256(b"citations" + seed).hexdigest()
    urls = [f"https://example.com/sim/{digest[:8]}", f"https://example.org/sim/{digest[8:16]}"]
    results = [
        {
            "title": f"Simulated source {i + 1}",
            "url": url,
            "date": "2024-05-01",
            "last_updated": "2024-06-01",
            "snippet": f"Snippet {i + 1} of a simulated search result.",
        }
        for i, url in enumerate(urls)
    ]
    return {"citations": urls, "search_results": results}
