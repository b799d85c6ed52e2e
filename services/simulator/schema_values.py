"""A JSON value that fits a JSON schema, as a model asked for structured output gives one.

Covers what tool input schemas and `response_format` schemas use (Pydantic's included): `$ref`
into `$defs` / `definitions`, `anyOf` / `oneOf` / `allOf`, `enum` and `const`, `type` (or a list
of types), object `properties` (every required one, and every one when `all_properties`),
`additionalProperties`, array `items` with `minItems`, numbers within `minimum` / `maximum`,
strings of at least `minLength`. A string is `"<property>-value"`, an integer 1, a number 1.5, a
boolean true, within the bounds. Deterministic, and bounded in depth.
"""

from typing import Any

MAX_DEPTH = 12


class _Builder:
    def __init__(self, root: dict[str, Any], all_properties: bool) -> None:
        self.root = root
        self.all_properties = all_properties

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        found: Any = self.root
        for part in ref[2:].split("/"):
            found = found.get(part) if isinstance(found, dict) else None
        return found if isinstance(found, dict) else {}

    def value(self, name: str, schema: Any, depth: int = 0) -> Any:
        if not isinstance(schema, dict) or depth > MAX_DEPTH:
            return f"{name}-value"
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(enum := schema.get("enum"), list) and enum:
            return enum[0]
        for combined in ("anyOf", "oneOf"):
            options = schema.get(combined)
            if isinstance(options, list) and options:
                chosen = next((o for o in options if self._kind(o) != "null"), options[0])
                return self.value(name, chosen, depth + 1)
        if isinstance(parts := schema.get("allOf"), list) and parts:
            merged: dict[str, Any] = {}
            for part in parts:
                merged |= self.resolve(part) if isinstance(part, dict) else {}
            return self.value(name, merged, depth + 1)
        return self._typed(name, schema, self._kind(schema), depth)

    def _kind(self, schema: Any) -> str | None:
        if not isinstance(schema, dict):
            return None
        kind = self.resolve(schema).get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None and "properties" in schema:
            return "object"
        return kind if isinstance(kind, str) else None

    def _typed(self, name: str, schema: dict[str, Any], kind: str | None, depth: int) -> Any:
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            count = max(1, int(schema.get("minItems") or 0))
            return [self.value(name, schema.get("items"), depth + 1) for _ in range(count)]
        if kind in ("integer", "number"):
            low, high = schema.get("minimum"), schema.get("maximum")
            number: float = 1 if kind == "integer" else 1.5
            if isinstance(low, int | float) and number < low:
                number = low
            if isinstance(high, int | float) and number > high:
                number = high
            return int(number) if kind == "integer" else number
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        text = f"{name}-value"
        return text.ljust(int(schema.get("minLength") or 0), "x")

    def object(self, schema: dict[str, Any], depth: int = 0) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = schema.get("required")
        names = [n for n in required if isinstance(n, str)] if isinstance(required, list) else []
        if self.all_properties:
            names += [n for n in properties if n not in names]
        return {n: self.value(n, properties.get(n), depth + 1) for n in names}


def object_for(schema: dict[str, Any], all_properties: bool = False) -> dict[str, Any]:
    """An object fitting `schema` (its required properties; all of them with
    `all_properties`)."""
    builder = _Builder(schema, all_properties)
    value = builder.value("value", schema)
    return value if isinstance(value, dict) else {"value": value}
