"""Reply generation and directive parsing, without a server."""

from services.simulator.config import SimulatorConfig
from services.simulator.replies import build_reply, count_words, parse_directives, text_of

CONFIG = SimulatorConfig(tokens=12, reasoning_tokens=8, latency_ms=5, chunk_delay_ms=1)


def test_directives_override_config() -> None:
    text = "please [[sim tokens=3 latency_ms=250 chunk_delay_ms=7 fail=midstream]] now"
    directives = parse_directives(text, CONFIG)
    assert (directives.tokens, directives.latency_ms, directives.chunk_delay_ms) == (3, 250, 7)
    assert directives.fail == "midstream"
    assert parse_directives("[[sim fail=403]]", CONFIG).fail == 403


def test_defaults_and_invalid_values_fall_back_to_config() -> None:
    directives = parse_directives("[[sim tokens=many fail=418]]", CONFIG)
    assert directives.tokens == 12
    assert directives.latency_ms == 5
    assert directives.fail is None


def test_failing_key_wins_over_directive() -> None:
    assert parse_directives("[[sim fail=500]]", CONFIG, "sk-fail-429").fail == 429
    assert parse_directives("hi", CONFIG, "sk-fine").fail is None


def test_reply_is_deterministic_and_capped() -> None:
    directives = parse_directives("", CONFIG)
    first = build_reply(b"seed", 1, directives, None)
    assert first == build_reply(b"seed", 1, directives, None)
    assert first.text != build_reply(b"other", 1, directives, None).text
    assert len(first.pieces) == 12 and not first.truncated
    capped = build_reply(b"seed", 1, directives, 5)
    assert capped.pieces == first.pieces[:5] and capped.truncated


def test_reasoning_counts_against_max_tokens() -> None:
    reply = build_reply(b"seed", 1, parse_directives("", CONFIG), 10, reasoning=True)
    assert len(reply.reasoning_pieces) == 8
    assert len(reply.pieces) == 2
    assert reply.completion_tokens == 10 and reply.truncated


def test_text_and_word_counting() -> None:
    blocks = [{"type": "text", "text": "a b"}, {"type": "image"}, {"type": "text", "text": "c"}]
    assert count_words([text_of(blocks), text_of("d  e\nf"), text_of(None)]) == 6
