"""The provider-neutral request and response bodies of the public API, in OpenAI's shapes."""

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shared.identifiers import FallbackTarget, ModelName, OptionToken, ProviderId

MAX_TOOLS = 128
MAX_FALLBACKS = 5
_MAX_DEPTH = 64
_INT_RANGE = range(-(2**63), 2**64)
# Not a product limit: the largest count the queue's JSON (orjson, 64-bit) can carry. Beyond
# it a request would fail at the queue hop with a 500 instead of a 400.
MAX_COUNT = 2**63 - 1

NonEmptyStr = Annotated[str, Field(min_length=1)]


def _fits_json(value: Any, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise ValueError(f"nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, bool):
        return
    if isinstance(value, int) and value not in _INT_RANGE:
        raise ValueError("numbers must fit in 64 bits")
    children = value.values() if isinstance(value, dict) else value
    if isinstance(value, dict | list):
        for child in children:
            _fits_json(child, depth + 1)


def _portable(value: Any) -> Any:
    """Free-form JSON must survive every hop (queue, providers): bounded numbers and depth."""
    _fits_json(value)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_portable)]
JsonParts = Annotated[list[dict[str, Any]], AfterValidator(_portable)]


class ToolFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    parameters: JsonObject | None = None


class Tool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"] = "function"
    function: ToolFunction
    cache_control: JsonObject | None = None  # a prompt-cache breakpoint after this tool


class ToolCallFunction(BaseModel):
    name: str
    arguments: str  # a JSON document, as text


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class ChatMessage(BaseModel):
    """One turn. An assistant turn may carry the reasoning its answer came with, to be sent
    back as its provider requires (DeepSeek's `reasoning_content` on tool-call turns,
    OpenRouter's `reasoning_details`)."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | JsonParts | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    is_error: bool | None = None  # a tool result reporting a failure (Anthropic's flag)
    cache_control: JsonObject | None = None  # a tool result's prompt-cache breakpoint
    reasoning_content: str | None = None
    reasoning_details: JsonParts | None = None

    @model_validator(mode="after")
    def _complete(self) -> "ChatMessage":
        reasoning = self.reasoning_content is not None or self.reasoning_details is not None
        if reasoning and self.role != "assistant":
            raise ValueError("only an assistant message carries reasoning")
        if (self.is_error is not None or self.cache_control is not None) and self.role != "tool":
            raise ValueError("only a tool message carries is_error or cache_control")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.role == "assistant" and self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs content or tool_calls")
        if self.role in ("system", "user", "tool") and self.content is None:
            raise ValueError(f"a {self.role} message needs content")
        return self

    def text(self) -> str:
        """The message's text parts, joined."""
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return "".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


class Thinking(BaseModel):
    """The provider's own switch for a reasoning model's thinking (DeepSeek `thinking`,
    OpenRouter `reasoning.enabled`, Anthropic `thinking`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["enabled", "disabled"]
    budget_tokens: int | None = Field(None, gt=0, le=MAX_COUNT)  # Anthropic, OpenRouter


ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
ServiceTier = Literal["auto", "default", "flex", "priority", "scale", "standard_only"]
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ResponseFormat(BaseModel):
    """OpenAI's `response_format`: free text, any JSON object, or JSON that fits `json_schema`
    (`{name, schema, strict?, description?}`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonObject | None = None

    @model_validator(mode="after")
    def _schema(self) -> "ResponseFormat":
        if self.type != "json_schema":
            if self.json_schema is not None:
                raise ValueError(f"json_schema does not go with type {self.type}")
            return self
        spec = self.json_schema or {}
        if not isinstance(spec.get("schema", {}), dict):
            raise ValueError("json_schema.schema must be a JSON schema object")
        name = spec.get("name", "response")
        if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
            raise ValueError("json_schema.name must be 1-64 letters, digits, _ or -")
        return self

    @property
    def schema_name(self) -> str:
        return str((self.json_schema or {}).get("name", "response"))

    @property
    def answer_schema(self) -> dict[str, Any]:
        """The JSON schema the answer must fit (any object for `json_object`)."""
        found = (self.json_schema or {}).get("schema")
        return found if isinstance(found, dict) else {"type": "object"}


def _metadata(value: dict[str, str]) -> dict[str, str]:
    """OpenAI's limits: at most 16 pairs, keys of 64 and values of 512 characters."""
    if len(value) > 16 or any(len(k) > 64 or len(v) > 512 for k, v in value.items()):
        raise ValueError("at most 16 pairs, keys up to 64 and values up to 512 characters")
    return value


Metadata = Annotated[dict[str, str], AfterValidator(_metadata)]


class ChatRequest(BaseModel):
    """`POST /api/v1/chat`. Unknown fields are rejected so that typos surface as 400s.

    Provider-specific fields (README.md, "API") are accepted for
    every provider and used by the providers they belong to.
    """

    model_config = ConfigDict(extra="forbid")

    provider: ProviderId
    model: ModelName
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0, le=MAX_COUNT)
    top_p: float | None = Field(None, ge=0, le=1)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    stop: str | list[str] | None = None
    stream: bool = False
    tools: list[Tool] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: Literal["auto", "none", "required"] | JsonObject | None = None
    parallel_tool_calls: bool | None = None
    anthropic_version: str | None = Field(None, min_length=1, max_length=32)
    reasoning_effort: ReasoningEffort | None = None
    thinking: Thinking | None = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    n: int | None = Field(None, ge=1, le=128)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    user: str | None = Field(None, min_length=1, max_length=256)
    metadata: Metadata | None = None
    store: bool | None = None
    top_k: int | None = Field(None, gt=0, le=MAX_COUNT)
    service_tier: ServiceTier | None = None
    # Parameters the target cannot honour are dropped (and named in `X-Dropped-Params`)
    # instead of refused; the edge takes it off before the job is queued.
    drop_params: bool | None = None
    site_url: str | None = Field(None, max_length=2048)
    app_name: str | None = Field(None, max_length=256)
    transforms: list[OptionToken] | None = Field(None, max_length=8)
    fallback_models: list[ModelName] | None = Field(None, max_length=MAX_FALLBACKS)
    # Gateway-level fallbacks, tried in order when the provider fails: "provider/model".
    fallbacks: list[FallbackTarget] | None = Field(None, max_length=MAX_FALLBACKS)
    cache: bool | None = None
    use_cache: bool | None = None

    def stop_list(self) -> list[str] | None:
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class Usage(BaseModel):
    """Tokens in unified semantics: `prompt_tokens` counts every input token (of which
    `prompt_tokens_details` names the `cached_tokens` read from the provider's prompt cache and
    the `cache_write_tokens` written to it), `completion_tokens` every output token (of which
    `completion_tokens_details.reasoning_tokens` were reasoning)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: dict[str, int] | None = None
    completion_tokens_details: dict[str, int] | None = None
    num_search_queries: int | None = None  # searches the provider ran (Perplexity)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    reasoning_content: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None
    tool_calls: list[ToolCall] | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: dict[str, Any] | None = None


class ChatResponse(BaseModel):
    id: str
    provider: str
    model: str
    choices: list[Choice]
    usage: Usage
    provider_metadata: dict[str, Any] | None = None


class EmbeddingsRequest(BaseModel):
    """`POST /api/v1/embeddings`: one text, or a list of texts (one vector each)."""

    model_config = ConfigDict(extra="forbid")

    provider: ProviderId
    model: ModelName
    # How many, and how long: MAX_INPUTS and MAX_PROMPT_CHARS (services/edge/caps.py).
    input: NonEmptyStr | Annotated[list[NonEmptyStr], Field(min_length=1)]
    input_type: Literal["query", "passage"] | None = None
    dimensions: int | None = Field(None, gt=0, le=MAX_COUNT)
    truncate: Literal["NONE", "START", "END"] | None = None

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class EmbeddingsResponse(BaseModel):
    embeddings: list[float] | list[list[float]]
    model: str
    usage: dict[str, int]


class RerankRequest(BaseModel):
    """`POST /api/v1/rerank`."""

    model_config = ConfigDict(extra="forbid")

    provider: ProviderId
    model: ModelName
    query: NonEmptyStr
    documents: list[NonEmptyStr] = Field(min_length=1)  # capped in services/edge/caps.py
    top_n: int | None = Field(None, gt=0, le=MAX_COUNT)
    return_documents: bool = True


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: str | None = None


class RerankResponse(BaseModel):
    results: list[RerankResult]


class ProviderInfo(BaseModel):
    id: str
    name: str
    status: str
    models: list[str]
    capabilities: list[str]


class ProvidersResponse(BaseModel):
    providers: list[ProviderInfo]
