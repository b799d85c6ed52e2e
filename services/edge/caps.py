"""What one request may ask for, as the operator capped it.

`MAX_BODY_BYTES` bounds the bytes of a body; these caps bound what the bytes stand for: the
messages of a chat and the characters of their text, the answer tokens it asks for (at most
what its model can give, `shared.model_limits`, and never more than `MAX_OUTPUT_TOKENS`), and
the inputs of embeddings and rerank. Every surface checks its native request here (the OpenAI- and
Anthropic-compatible ones after translation), so one rule holds everywhere.
"""

from shared.errors import InvalidRequest
from shared.identifiers import quoted
from shared.model_limits import max_output_tokens
from shared.schemas import ChatRequest, EmbeddingsRequest, RerankRequest
from shared.settings import Settings


def _at_most(field: str, what: str, value: int, limit: int) -> None:
    if value > limit:
        raise InvalidRequest(
            f"Invalid field '{field}': at most {limit} {what} per request, got {value}",
            details={"field": field, "limit": limit, "value": value},
        )


def _texts(settings: Settings, field: str, what: str, inputs: list[str], extra: str = "") -> None:
    _at_most(field, what, len(inputs), settings.max_inputs)
    characters = len(extra) + sum(len(t) for t in inputs)
    _at_most(field, "characters of text", characters, settings.max_prompt_chars)


def check_chat(settings: Settings, body: ChatRequest) -> None:
    _at_most("messages", "messages", len(body.messages), settings.max_messages)
    characters = sum(len(m.text()) for m in body.messages)
    _at_most("messages", "characters of text", characters, settings.max_prompt_chars)
    if body.max_tokens is not None:
        _answer_tokens(settings, body, body.max_tokens)
    if body.stream and body.n is not None and body.n > 1:
        raise InvalidRequest(
            "Invalid field 'n': several choices are answered whole; ask without stream",
            details={"field": "n", "parameter": "n", "value": body.n},
        )


def _answer_tokens(settings: Settings, body: ChatRequest, asked: int) -> None:
    """`max_tokens` within the limit of the model and of every fallback it may move to."""
    for provider, model in [(body.provider, body.model), *fallback_targets(body)]:
        limit = max_output_tokens(provider, model, settings.max_output_tokens)
        if asked > limit:
            raise InvalidRequest(
                f"Invalid field 'max_tokens': model '{provider}/{quoted(model)}' answers with at "
                f"most {limit} tokens, got {asked}",
                details={
                    "field": "max_tokens",
                    "provider": provider,
                    "model": quoted(model),
                    "limit": limit,
                    "value": asked,
                },
            )


def check_embeddings(settings: Settings, body: EmbeddingsRequest) -> None:
    _texts(settings, "input", "inputs", body.texts())


def check_rerank(settings: Settings, body: RerankRequest) -> None:
    _texts(settings, "documents", "documents", body.documents, extra=body.query)


def fallback_targets(body: ChatRequest) -> list[tuple[str, str]]:
    """The (provider, model) pairs of `fallbacks`, each written (and checked) `provider/model`."""
    pairs = (target.partition("/") for target in body.fallbacks or [])
    return [(provider, model) for provider, _, model in pairs]
