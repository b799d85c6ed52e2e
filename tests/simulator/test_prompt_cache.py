"""The providers' prompt caches: Anthropic's marked breakpoints, DeepSeek's automatic prefixes."""

import anthropic
import httpx

from services.simulator import keys

MODEL = "claude-sonnet-4-20250514"


def words(count: int, salt: str) -> str:
    return " ".join(f"{salt}{i}" for i in range(count))


def cached_system(text: str) -> list[dict[str, object]]:
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]


def test_a_marked_prefix_is_written_once_then_read(sim_url: str) -> None:
    key = keys.issue("sk-ant")
    client = anthropic.Anthropic(base_url=f"{sim_url}/anthropic", api_key=key, max_retries=0)
    system = cached_system(words(1100, "rule"))

    def ask(question: str) -> anthropic.types.Usage:
        message = client.messages.create(
            model=MODEL,
            max_tokens=20,
            system=system,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": question}],
        )
        return message.usage

    first, second = ask("first question here"), ask("another question")
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (1100, 0)
    assert first.input_tokens == 3  # only what follows the breakpoint
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, 1100)
    assert second.input_tokens == 2
    # Another key has a cache of its own; an unmarked prompt is never cached.
    other = anthropic.Anthropic(base_url=f"{sim_url}/anthropic", api_key=keys.issue("sk-ant"))
    third = other.messages.create(
        model=MODEL,
        max_tokens=20,
        system=system,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "first question here"}],
    ).usage
    assert third.cache_creation_input_tokens == 1100
    plain = client.messages.create(
        model=MODEL,
        max_tokens=20,
        system=words(1100, "rule"),
        messages=[{"role": "user", "content": "first question here"}],
    ).usage
    assert (plain.cache_creation_input_tokens, plain.cache_read_input_tokens) == (0, 0)
    assert plain.input_tokens == 1103


def test_a_prefix_below_the_minimum_is_not_cached(sim_url: str) -> None:
    client = anthropic.Anthropic(base_url=f"{sim_url}/anthropic", api_key="sk-ant-short")
    for _ in range(2):
        usage = client.messages.create(
            model=MODEL,
            max_tokens=20,
            system=cached_system(words(500, "short")),  # type: ignore[arg-type]
            messages=[{"role": "user", "content": "hello"}],
        ).usage
        assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)


def test_deepseek_reads_repeated_prefixes_in_units_of_64(sim_url: str) -> None:
    key = keys.issue("sk")
    context = {"role": "system", "content": words(150, "fact")}

    def ask(question: str) -> dict[str, object]:
        body = {
            "model": "deepseek-chat",
            "messages": [context, {"role": "user", "content": question}],
            "max_tokens": 5,
        }
        response = httpx.post(
            f"{sim_url}/deepseek/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        usage: dict[str, object] = response.json()["usage"]
        return usage

    first, second = ask("what now"), ask("what then")
    assert first["prompt_cache_hit_tokens"] == 0
    assert first["prompt_cache_miss_tokens"] == first["prompt_tokens"] == 152
    # 150 shared words of system prompt (plus "what"): two whole units of 64 are read.
    assert second["prompt_cache_hit_tokens"] == 128
    assert second["prompt_cache_miss_tokens"] == 24
    assert second["prompt_tokens_details"] == {"cached_tokens": 128}
