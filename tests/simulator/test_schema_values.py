"""The simulator's structured answers fit their schemas (checked with `jsonschema`)."""

from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from services.simulator.schema_values import object_for


class Address(BaseModel):
    street: str = Field(min_length=12)
    zone: Literal["north", "south"]


class Person(BaseModel):
    name: str
    age: int = Field(ge=18, le=30)
    score: float = Field(gt=0, le=1)
    nickname: str | None = None
    tags: list[str] = Field(min_length=2)
    home: Address
    past: list[Address]


SCHEMAS = {
    "pydantic-nested": Person.model_json_schema(),
    "any-object": {"type": "object"},
    "all-of": {
        "allOf": [{"$ref": "#/$defs/A"}],
        "$defs": {
            "A": {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]}
        },
    },
    "type-list": {
        "type": "object",
        "properties": {"v": {"type": ["null", "integer"]}},
        "required": ["v"],
    },
    "const-enum": {
        "type": "object",
        "properties": {"c": {"const": 3}, "e": {"enum": ["a", "b"]}},
        "required": ["c", "e"],
    },
}


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=list(SCHEMAS))
def test_every_answer_fits_its_schema(schema: dict[str, object]) -> None:
    for all_properties in (False, True):
        jsonschema.validate(object_for(schema, all_properties), schema)


def test_all_properties_fills_the_optional_ones_too() -> None:
    assert "nickname" not in object_for(Person.model_json_schema())
    assert "nickname" in object_for(Person.model_json_schema(), all_properties=True)
