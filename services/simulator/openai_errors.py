"""Each OpenAI-dialect provider's own error bodies: HTTP errors and the mid-stream error chunk."""

from typing import Any

from starlette.responses import Response

from services.simulator import wire
from services.simulator.openai_profile import OpenAIProfile

_OPENAI: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request", "invalid_request_error", "invalid_request_error"),
    402: ("Insufficient Balance", "invalid_request_error", "insufficient_balance"),
    403: ("You are not allowed to use this resource", "permission_error", "permission_denied"),
    429: ("Rate limit reached for requests", "rate_limit_error", "rate_limit_exceeded"),
    500: ("Internal server error", "server_error", "internal_error"),
    503: ("Server overloaded, please retry later", "server_error", "server_overloaded"),
    529: ("Overloaded", "server_error", "overloaded"),
}
_XAI_CODES = {
    400: "Client specified an invalid argument",
    402: "Client specified an invalid argument",
    401: "unauthenticated:no-credentials",
    403: "The caller does not have permission to execute the specified operation",
    429: "Some resource has been exhausted",
    500: "Internal error",
    503: "The service is currently unavailable",
    529: "The service is currently unavailable",
}
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}
_LITELLM_CLASSES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    429: "RateLimitError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
    529: "ServiceUnavailableError",
}
_HF_TYPES = {
    400: "Empty",
    401: "Unauthorized",
    402: "Validation",
    413: "Validation",
    422: "Tokenizer",
    429: "Overloaded",
    500: "Backend",
    503: "Unhealthy",
    504: "Backend",
    529: "Overloaded",
}
PERPLEXITY_401_HTML = (
    "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n"
    "<center><h1>401 Authorization Required</h1></center>\r\n"
    "<hr><center>openresty/1.25.3.1</center>\r\n</body>\r\n</html>\r\n"
)
MIDSTREAM_MESSAGE = "Server overloaded, please retry later"
# 403 in each provider's words (docs/providers.md): OpenRouter's is a moderation flag, xAI's a
# blocked key or team, Hugging Face's a token without the Inference Providers permission.
_FORBIDDEN = {
    "openrouter": "Your chosen model requires moderation and your input was flagged",
    "xai": "The API key sim-key-id is blocked or has no permission for this model or endpoint",
    "nim": "Forbidden: the API key may not call this function",
    "hf": "This authentication method does not have sufficient permissions to call "
    "Inference Providers on behalf of user sim-user",
}


def _mask(key: str) -> str:
    return "****" + key[-4:]


def _message(profile: OpenAIProfile, status: int, key: str, missing_key: bool) -> str:
    if status == 401 or (status == 400 and profile.error_style == "xai" and key):
        if missing_key:
            return {
                "xai": "No credentials provided",
                "openrouter": "No auth credentials found",
                "litellm": "Authentication Error, No api key passed in.",
                "hf": "You must provide a token in the Authorization header",
            }.get(profile.error_style, profile.auth_message.format(key=""))
        if profile.error_style == "xai":
            return (
                f"Incorrect API key provided: {key[:2]}***{key[-2:]}. "
                "You can obtain an API key from https://console.x.ai."
            )
        return profile.auth_message.format(key=_mask(key))
    if status == 403 and profile.error_style in _FORBIDDEN:
        return _FORBIDDEN[profile.error_style]
    return _OPENAI.get(status, _OPENAI[500])[0]


def _body(profile: OpenAIProfile, status: int, message: str, model: str) -> Any:
    style = profile.error_style
    if style == "xai":
        return {"code": _XAI_CODES.get(status, _XAI_CODES[400]), "error": message}
    if style == "openrouter":
        error: dict[str, Any] = {"code": status, "message": message}
        if status == 403:
            error["metadata"] = {
                "reasons": ["simulated"],
                "flagged_input": "[[sim fail=403]]",
                "provider_name": "SimProvider",
                "model_slug": model,
            }
        return {"error": error}
    if style == "nim":
        return {
            "type": "about:blank",
            "status": status,
            "title": _TITLES[status],
            "detail": message,
        }
    if style == "hf":
        if status == 403:  # the Hub's own refusal: a bare `{"error": ...}` (docs/providers.md §8b)
            return {"error": message}
        return {"error": message, "error_type": _HF_TYPES.get(status, "Backend")}
    if style == "perplexity":
        kinds = {400: "invalid_request", 403: "forbidden", 429: "rate_limit_exceeded"}
        kind = kinds.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "code": status}}
    if style == "litellm":
        litellm_type = "auth_error" if status == 401 else None
        text = f"litellm.{_LITELLM_CLASSES.get(status, 'BadRequestError')}: {message}"
        return {
            "error": {"message": text, "type": litellm_type, "param": None, "code": str(status)}
        }
    _, kind, code = _OPENAI.get(status, _OPENAI[400])
    if status == 401:
        kind, code = "authentication_error", "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def error_response(
    profile: OpenAIProfile,
    status: int,
    key: str = "",
    message: str = "",
    missing_key: bool = False,
    model: str = "",
    retry_after: int = 1,
) -> Response:
    """`status` in the provider's shape; a bad key on xAI is its documented 400, not 401."""
    if status not in _TITLES:
        status = 500
    if status == 401 and profile.error_style == "xai" and not missing_key:
        status = 400
    if status == 401 and profile.error_style == "perplexity":
        return Response(PERPLEXITY_401_HTML, 401, media_type="text/html")
    text = message or _message(profile, status, key, missing_key)
    headers = {"retry-after": str(retry_after)} if status == 429 else None
    return wire.json_response(_body(profile, status, text, model), status, headers)


def error_in_body(answer: dict[str, Any] | None) -> dict[str, Any]:
    """OpenRouter's error after the model began, with status 200: the answer so far (its
    choice finished with `error`) plus a top-level `error`, or the `error` alone."""
    error = {
        "code": 502,
        "message": "Provider returned error: upstream disconnected",
        "metadata": {"provider_name": "SimProvider"},
    }
    if answer is None:
        return {"error": error}
    for choice in answer["choices"]:
        choice["finish_reason"] = choice["native_finish_reason"] = "error"
    return {**answer, "error": error}


def midstream_chunk(profile: OpenAIProfile, envelope: dict[str, Any]) -> dict[str, Any]:
    """The chunk that reports a failure after tokens were sent (HTTP status stays 200)."""
    style = profile.error_style
    if style == "nim":
        nim_error = {"object": "error", "message": MIDSTREAM_MESSAGE, "type": "InternalServerError"}
        return {"error": nim_error}
    if style == "litellm":
        text = f"litellm.ServiceUnavailableError: {MIDSTREAM_MESSAGE}"
        return {"error": {"message": text, "type": None, "param": None, "code": "503"}}
    if style == "hf":  # text-generation-inference: the error is a bare string
        return {
            "error": f"Request failed during generation: {MIDSTREAM_MESSAGE}",
            "error_type": "generation",
        }
    choice: dict[str, Any] = {"index": 0, "delta": {}, "finish_reason": "error"}
    error: dict[str, Any] = {
        "message": MIDSTREAM_MESSAGE,
        "type": "server_error",
        "code": "overloaded",
    }
    if style == "openrouter":
        choice = {**choice, "delta": {"content": ""}, "native_finish_reason": "error"}
        error = {"code": "server_error", "message": "Provider disconnected unexpectedly"}
    return {**envelope, "error": error, "choices": [choice]}
