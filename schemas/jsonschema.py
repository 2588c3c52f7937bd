"""marshmallow -> JSON Schema (draft 2020-12), for the field and validator types used here.

Small on purpose: it knows exactly the building blocks in schemas.fields and raises on
anything else, so a new kind of constraint cannot silently go missing from the published
JSON Schema while Python enforces it.
"""
from __future__ import annotations

import inspect
from typing import Any

from marshmallow import Schema, fields, missing, validate

from .fields import (
    RFC3339_PATTERN,
    BoundedList,
    ContractString,
    Pattern,
    RFC3339DateTime,
    StrictBoolean,
    StrictSchema,
)

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def object_schema(schema: Schema, defs: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of one marshmallow schema; nested schemas are added to `defs` by class name."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in schema.fields.items():
        key = field.data_key or name
        properties[key] = field_schema(field, defs)
        if field.required:
            required.append(key)
    out: dict[str, Any] = {}
    description = _doc(type(schema))
    if description:
        out["description"] = description
    out["type"] = "object"
    out["properties"] = properties
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    rules = getattr(schema, "conditional_required", ())
    if rules:
        out["allOf"] = [_conditional(rule) for rule in rules]
    return out


def field_schema(field: fields.Field, defs: dict[str, Any]) -> dict[str, Any]:
    out = _base(field, defs)
    for validator in field.validators:
        _apply_validator(out, validator, field)
    description = field.metadata.get("description")
    if description:
        out = {"description": description, **out}
    default = field.load_default
    if default is not missing and default is not None and not callable(default):
        out["default"] = default
    if field.allow_none:
        out = _nullable(out)
    return out


def _base(field: fields.Field, defs: dict[str, Any]) -> dict[str, Any]:
    if isinstance(field, fields.Nested):
        nested = field.schema
        name = def_name(type(nested))
        if name not in defs:
            defs[name] = {}  # reserve first: guards against recursion
            defs[name] = object_schema(nested, defs)
        return {"$ref": f"#/$defs/{name}"}
    if isinstance(field, BoundedList):
        return {"type": "array", "items": field_schema(field.inner, defs)}
    if isinstance(field, RFC3339DateTime):
        return {"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}
    if isinstance(field, StrictBoolean):
        return {"type": "boolean"}
    if isinstance(field, fields.Integer):
        if not field.strict:
            raise TypeError("only strict Integer fields are exportable (JSON true is not 1)")
        return {"type": "integer"}
    if isinstance(field, ContractString):
        return {"type": "string"}
    if type(field) is fields.Dict and field.key_field is None and field.value_field is None:
        return {"type": "object"}
    raise TypeError(f"no JSON Schema mapping for field {type(field).__name__}")


def _apply_validator(out: dict[str, Any], validator: Any, field: fields.Field) -> None:
    is_array = out.get("type") == "array"
    if isinstance(validator, validate.Length) and validator.equal is None:
        if validator.min is not None and validator.min > 0:
            out["minItems" if is_array else "minLength"] = validator.min
        if validator.max is not None:
            out["maxItems" if is_array else "maxLength"] = validator.max
    elif isinstance(validator, validate.Range):
        if validator.min is not None:
            out["minimum" if validator.min_inclusive else "exclusiveMinimum"] = validator.min
        if validator.max is not None:
            out["maximum" if validator.max_inclusive else "exclusiveMaximum"] = validator.max
    elif isinstance(validator, validate.OneOf):
        out["enum"] = list(validator.choices)
    elif isinstance(validator, validate.Equal):
        out["const"] = validator.comparable
    elif isinstance(validator, Pattern):
        out["pattern"] = validator.regex
    else:
        raise TypeError(f"no JSON Schema mapping for validator {type(validator).__name__} on {field.name}")


def _nullable(out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(out.get("type"), str) and not {"enum", "const"} & out.keys():
        return {**out, "type": [out["type"], "null"]}
    description = out.pop("description", None)
    wrapped: dict[str, Any] = {"anyOf": [out, {"type": "null"}]}
    return {"description": description, **wrapped} if description else wrapped


def _conditional(rule: Any) -> dict[str, Any]:
    test = {"const": rule.values[0]} if len(rule.values) == 1 else {"enum": list(rule.values)}
    return {
        "if": {"properties": {rule.field: test}, "required": [rule.field]},
        "then": {
            "required": list(rule.require),
            "properties": {name: {"not": {"type": "null"}} for name in rule.require},
        },
    }


def def_name(cls: type) -> str:
    """Name of a schema under $defs: the class name without a "Schema" suffix."""
    name = cls.__name__
    return name[: -len("Schema")] if name.endswith("Schema") and name != "Schema" else name


def _doc(cls: type) -> str | None:
    if cls.__doc__ is None or cls in (StrictSchema, Schema):
        return None
    return doc_summary(cls)


def doc_summary(cls: type) -> str:
    """A class docstring's first paragraph on one line (a description never stops mid-sentence)."""
    return inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].replace("\n", " ")


def document(
    root: Schema,
    *,
    schema_id: str,
    title: str,
    description: str,
    overrides: dict[str, dict[str, Any]] | None = None,
    extra_defs: dict[str, Schema] | None = None,
) -> dict[str, Any]:
    """A standalone JSON Schema document for `root`.

    `overrides` replace property schemas (e.g. pin eventType to a const, or point payload at
    the topic's schema, given as {"$ref": ...} after `extra_defs` registered it).
    """
    defs: dict[str, Any] = {}
    for name, schema in (extra_defs or {}).items():
        defs[name] = object_schema(schema, defs)
    body = object_schema(root, defs)
    body.pop("description", None)
    for key, replacement in (overrides or {}).items():
        if key not in body["properties"]:
            raise KeyError(f"override for unknown property {key}")
        body["properties"][key] = replacement
    doc: dict[str, Any] = {"$schema": DRAFT, "$id": schema_id, "title": title, "description": description}
    doc.update(body)
    if defs:
        doc["$defs"] = dict(sorted(defs.items()))
    return doc
