"""Loaders compiled once from the marshmallow contracts, for the hot path of decode_event.

`compile_loader(schema)` walks a schema's fields and validators and generates one plain Python
function per (nested) schema that returns what `schema.load(data)` returns (same keys in the
same order, same values, same types) when the data is valid, and raises for anything else
(Defer, or whatever a validator raised). The caller then runs marshmallow, which stays the
source of truth and the only author of error messages: a compiled loader never judges an input
invalid, it only declines to vouch for it.

Why generated from the schemas and not written by hand: a hand-written copy would drift. The
code is derived from the very field objects marshmallow uses (their regexes, bounds, choices,
defaults, conditional rules), and any field type, option, validator or hook that is not mirrored
exactly either runs as marshmallow would run it (validators, schema hooks) or makes compilation
fail with Unsupported, so that schema keeps marshmallow alone instead of being guessed at.
Why generated source rather than closures: on the CDR topic (10k+ events/s) the per-field call
and loop overhead of closures cost as much as the checks; straight-line code does not.
`loader.source` holds the generated text, for reading.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.utils import missing

from .fields import (
    BoundedList,
    ContractInteger,
    ContractString,
    Pattern,
    RFC3339DateTime,
    StrictBoolean,
    StrictSchema,
    parse_rfc3339,
)

Loader = Callable[[Any], Any]


class Defer(Exception):
    """The compiled loader cannot vouch for this input: let marshmallow decide."""


class Unsupported(Exception):
    """The schema uses something the compiler does not mirror; keep marshmallow for it."""


def compile_loader(schema: Schema) -> Loader:
    """A function equal to `schema.load` on valid data that raises on anything else.

    Raises Unsupported when the schema cannot be mirrored exactly.
    """
    compiler = _Compiler()
    name = compiler.schema_function(schema)
    source = "\n\n".join(compiler.sources) + "\n"
    namespace = dict(compiler.namespace)
    exec(compile(source, f"<fastload {type(schema).__name__}>", "exec"), namespace)  # noqa: S102
    loader = namespace[name]
    loader.source = source
    return loader


def compiled_or_none(schema: Schema) -> Loader | None:
    """compile_loader(schema), or None where it cannot be mirrored (marshmallow does it all)."""
    try:
        return compile_loader(schema)
    except Unsupported:
        return None


class _Compiler:
    """Collects the generated functions and the objects their code refers to."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"Defer": Defer, "missing": missing, "parse_rfc3339": parse_rfc3339}
        self.sources: list[str] = []
        self._count = 0

    def bind(self, value: Any, hint: str) -> str:
        """A name under which the generated code sees `value`."""
        self._count += 1
        name = f"{hint}_{self._count}"
        self.namespace[name] = value
        return name

    def schema_function(self, schema: Schema) -> str:
        """Generate `def load_<Schema>_<n>(data)` mirroring schema.load; returns its name."""
        what = type(schema).__name__
        if schema.many or schema.partial or schema.unknown != RAISE:
            raise Unsupported(f"{what}: many, partial or unknown other than RAISE")
        for tag in (PRE_LOAD, POST_LOAD, VALIDATES):
            if schema._hooks[tag]:
                raise Unsupported(f"{what}: {tag} hooks")
        self._count += 1
        name = f"load_{what}_{self._count}"
        body: list[str] = []
        outputs: list[tuple[str, str, bool]] = []  # (attribute, variable, may be left out)
        keys = []
        for index, (field_name, field) in enumerate(schema.load_fields.items()):
            key = field.data_key if field.data_key is not None else field_name
            attr = field.attribute or field_name
            if "." in attr:  # marshmallow would nest the value under a dotted attribute
                raise Unsupported(f"{what}.{field_name}: dotted attribute")
            keys.append(key)
            var = f"v{index}"
            lines, may_be_left_out = self._field_lines(field, key, var)
            body += lines
            outputs.append((attr, var, may_be_left_out))
        known = self.bind(frozenset(keys), "known")
        head = [f"if type(data) is not dict or not data.keys() <= {known}:", "    raise Defer"]
        body = head + body + self._output_lines(schema, outputs) + self._rule_lines(schema) + ["return out"]
        self.sources.append(f"def {name}(data):\n" + "\n".join(_indent(body)))
        return name

    def _field_lines(self, field: fields.Field, key: str, var: str) -> tuple[list[str], bool]:
        """Lines that leave the loaded value in `var` (or `missing` when it is to be left out)."""
        if field.pre_load or field.post_load:
            raise Unsupported(f"{field.name}: field-level pre_load/post_load")
        default = field.load_default
        present = self._present_lines(field, var)
        if field.required:
            # No separate test for absence: every value check starts with an exact type
            # test, which `missing` fails like any wrong type.
            return [f"{var} = data.get({key!r}, missing)", *present], False
        if default is None and field.allow_none:  # absent and null both load as None
            return [f"{var} = data.get({key!r})", *present], False
        if default is missing:
            return [f"{var} = data.get({key!r}, missing)", f"if {var} is not missing:", *_indent(present)], True
        fallback = self.bind(default, "default")
        produce = f"{fallback}()" if callable(default) else fallback
        return [f"{var} = data.get({key!r}, missing)", f"if {var} is missing:", f"    {var} = {produce}",
                "else:", *_indent(present)], False

    def _present_lines(self, field: fields.Field, var: str, depth: int = 0) -> list[str]:
        """Field.deserialize of a present value: null, conversion, then validators."""
        lines = self._value_lines(field, var, depth)
        if field.allow_none:
            return [f"if {var} is not None:", *_indent(lines)]
        return lines

    def _value_lines(self, field: fields.Field, var: str, depth: int) -> list[str]:
        # Exact types only: a subclass may deserialize differently and must not pass for its base.
        kind = type(field)
        if kind is ContractString:
            return _fail_if([f"type({var}) is not str", *self._check_exprs(field.validators, var)])
        if kind is ContractInteger:
            if not field.strict:
                raise Unsupported(f"{field.name}: non-strict integer")
            # type() is int refuses bool and float, as marshmallow's strict Integer does.
            return _fail_if([f"type({var}) is not int", *self._check_exprs(field.validators, var)])
        if kind is StrictBoolean:
            return _fail_if([f"({var} is not True and {var} is not False)", *self._check_exprs(field.validators, var)])
        if kind is RFC3339DateTime:
            # JSON never yields a datetime, so only the field's string branch is mirrored.
            return [*_fail_if([f"type({var}) is not str"]), f"{var} = parse_rfc3339({var})",
                    *_fail_if([f"{var} is None", *self._check_exprs(field.validators, var)])]
        if kind is fields.Nested:
            if field.many or field.unknown not in (None, RAISE):
                raise Unsupported(f"{field.name}: nested many, or unknown other than RAISE")
            # field.schema is the bound instance, only/exclude applied, as marshmallow uses it.
            inner = self.schema_function(field.schema)
            return [f"{var} = {inner}({var})", *_fail_if(self._check_exprs(field.validators, var))]
        if kind in (fields.List, BoundedList):
            return self._list_lines(field, var, depth)
        if kind is fields.Dict:
            if field.key_field is not None or field.value_field is not None:
                raise Unsupported(f"{field.name}: typed dict keys or values")
            mapping = self.bind(field.mapping_type, "mapping")
            return [*_fail_if([f"type({var}) is not dict"]), f"{var} = {mapping}({var})",  # a copy, as marshmallow returns
                    *_fail_if(self._check_exprs(field.validators, var))]
        raise Unsupported(f"{field.name}: field type {kind.__name__}")

    def _list_lines(self, field: fields.List, var: str, depth: int) -> list[str]:
        item, items = f"x{depth}", f"items{depth}"
        # Lengths are checked before the items, so a flood costs nothing; other validators
        # see the loaded list, as in marshmallow.
        lengths = [v for v in field.validators if type(v) is validate.Length]
        others = [v for v in field.validators if type(v) is not validate.Length]
        return [
            *_fail_if([f"type({var}) is not list", *self._check_exprs(lengths, var)]),
            f"{items} = []",
            f"for {item} in {var}:",
            *_indent(self._present_lines(field.inner, item, depth + 1)),
            f"    {items}.append({item})",
            f"{var} = {items}",
            *_fail_if(self._check_exprs(others, var)),
        ]

    def _check_exprs(self, validators: list[Any], var: str) -> list[str]:
        """One expression per validator that is true when the value fails it."""
        return [self._check_expr(validator, var) for validator in validators]

    def _check_expr(self, validator: Any, var: str) -> str:
        kind = type(validator)
        if kind is Pattern:
            return f"{self.bind(validator._compiled.fullmatch, 'fullmatch')}({var}) is None"
        if kind is validate.Length:
            if validator.equal is not None:
                return f"len({var}) != {self._literal(validator.equal)}"
            return self._bounds_expr(f"len({var})", validator.min, validator.max, True, True)
        if kind is validate.Range:
            return self._bounds_expr(var, validator.min, validator.max, validator.min_inclusive, validator.max_inclusive)
        if kind is validate.OneOf:
            choices = validator.choices
            if all(type(choice) is str for choice in choices):
                # A set answers `in` as the sequence does for str choices, without a scan.
                choices = frozenset(choices)
            return f"{var} not in {self.bind(choices, 'choices')}"
        if kind is validate.Equal:
            return f"{var} != {self.bind(validator.comparable, 'equal')}"
        return f"not {self.bind(_passes(validator), 'validator')}({var})"

    def _bounds_expr(self, value: str, low: Any, high: Any, low_inclusive: bool, high_inclusive: bool) -> str:
        tests = []
        if low is not None:
            tests.append(f"{value} {'<' if low_inclusive else '<='} {self._literal(low)}")
        if high is not None:
            tests.append(f"{value} {'>' if high_inclusive else '>='} {self._literal(high)}")
        return "(" + " or ".join(tests) + ")" if tests else "False"

    def _literal(self, value: Any) -> str:
        return repr(value) if type(value) is int else self.bind(value, "bound")

    def _output_lines(self, schema: Schema, outputs: list[tuple[str, str, bool]]) -> list[str]:
        """Build the result in field order, as marshmallow does."""
        dict_class = schema.dict_class
        if dict_class is dict and not any(left_out for _, _, left_out in outputs):
            return ["out = {" + ", ".join(f"{attr!r}: {var}" for attr, var, _ in outputs) + "}"]
        lines = [f"out = {self.bind(dict_class, 'dict_class')}()"]
        for attr, var, left_out in outputs:
            if left_out:
                lines += [f"if {var} is not missing:", f"    out[{attr!r}] = {var}"]
            else:
                lines.append(f"out[{attr!r}] = {var}")
        return lines

    def _rule_lines(self, schema: Schema) -> list[str]:
        """The schema's @validates_schema methods, run on the loaded object."""
        lines = []
        # marshmallow runs the pass_collection hooks first; with many=False both see the object.
        for attr_name, _, kwargs in sorted(schema._hooks[VALIDATES_SCHEMA], key=lambda hook: not hook[1]):
            method = getattr(schema, attr_name)
            if getattr(method, "__func__", None) is StrictSchema._check_conditional_required:
                lines += self._conditional_lines(schema)
            else:
                rule = self.bind(_schema_rule(method, kwargs.get("pass_original", False), schema), "rule")
                lines.append(f"{rule}(out, data)")
        return lines

    def _conditional_lines(self, schema: StrictSchema) -> list[str]:
        # The When rules are data, so their check is written out here rather than called:
        # the same test as StrictSchema._check_conditional_required, without a method call
        # per object (and nothing at all for the many schemas without rules).
        lines = []
        for rule in schema.conditional_required:
            values = self.bind(rule.values, "values")
            absent = " or ".join(f"out.get({name!r}) is None" for name in rule.require)
            lines += _fail_if([f"(out.get({rule.field!r}) in {values} and ({absent}))"])
        return lines


def _fail_if(conditions: list[str]) -> list[str]:
    if not conditions:
        return []
    return [f"if {' or '.join(conditions)}:", "    raise Defer"]


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _passes(validator: Callable[[Any], Any]) -> Callable[[Any], bool]:
    """A validator the compiler has no short form for, called as marshmallow calls it."""
    plain_function = not isinstance(validator, validate.Validator)

    def passes(value: Any) -> bool:
        try:
            result = validator(value)
        except ValidationError:
            return False
        # marshmallow's And counts False from a plain function as a failure.
        return not (plain_function and result is False)

    return passes


def _schema_rule(method: Callable[..., Any], pass_original: bool, schema: Schema) -> Callable[[Any, Any], None]:
    partial, unknown = schema.partial, schema.unknown

    def run(out: Any, original: Any) -> None:
        try:
            if pass_original:
                method(out, original, partial=partial, many=False, unknown=unknown)
            else:
                method(out, partial=partial, many=False, unknown=unknown)
        except ValidationError:
            raise Defer from None

    return run
