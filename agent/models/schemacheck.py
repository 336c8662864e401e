"""Checking a value against a JSON schema: the subset tool parameters use.

Tool calls are validated against their tool's schema after parsing (a constrained reply
always passes; an unconstrained one may not). This covers the keywords function schemas
use in practice: ``type`` (one or a list), ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties``, ``items``/``prefixItems``, ``minItems``/``maxItems``,
``minimum``/``maximum`` (and the exclusive ones), ``minLength``/``maxLength``, ``pattern``,
``anyOf``/``oneOf``/``allOf`` and local ``$ref`` (``#/$defs/...``). Unknown keywords are
ignored, as JSON Schema says.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["schema_errors"]

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def schema_errors(value: Any, schema: Any, *, root: Any = None, path: str = "$", limit: int = 5) -> list[str]:
    """What is wrong with ``value`` under ``schema`` (empty: it conforms), at most ``limit``
    messages, each naming the place (``$.city``)."""
    errors: list[str] = []
    _check(value, schema, schema if root is None else root, path, errors)
    return errors[:limit]


def _check(value: Any, schema: Any, root: Any, path: str, errors: list[str]) -> None:
    if schema is True or schema is None or not isinstance(schema, dict):
        if schema is False:
            errors.append(f"{path}: no value is allowed here")
        return
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict):
            _check(value, target, root, path, errors)
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_TYPES.get(k, lambda _v: True)(value) for k in kinds):
            errors.append(f"{path}: expected {' or '.join(map(str, kinds))}, got {_type_name(value)}")
            return
    if "const" in schema and not _same(value, schema["const"]):
        errors.append(f"{path}: must be {schema['const']!r}")
    if isinstance(schema.get("enum"), list) and not any(_same(value, e) for e in schema["enum"]):
        errors.append(f"{path}: {value!r} is not one of {schema['enum']!r}")
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options and not any(
                not schema_errors(value, o, root=root, path=path) for o in options):
            errors.append(f"{path}: matches none of the {key} alternatives")
    for sub in schema.get("allOf") or []:
        _check(value, sub, root, path, errors)
    if isinstance(value, dict):
        _check_object(value, schema, root, path, errors)
    elif isinstance(value, list):
        _check_array(value, schema, root, path, errors)
    elif isinstance(value, str):
        if isinstance(schema.get("minLength"), int) and len(value) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if isinstance(schema.get("maxLength"), int) and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                if re.search(pattern, value) is None:
                    errors.append(f"{path}: does not match {pattern!r}")
            except re.error:
                pass
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        bounds = {k: _num(schema.get(k)) for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")}
        broken = {"minimum": lambda b: value < b, "maximum": lambda b: value > b,
                  "exclusiveMinimum": lambda b: value <= b, "exclusiveMaximum": lambda b: value >= b}
        for key, bound in bounds.items():
            if bound is not None and broken[key](bound):
                errors.append(f"{path}: {value} breaks {key} {schema[key]}")


def _check_object(value: dict[str, Any], schema: dict[str, Any], root: Any, path: str, errors: list[str]) -> None:
    raw = schema.get("properties")
    props: dict[str, Any] = raw if isinstance(raw, dict) else {}
    for name in schema.get("required") or []:
        if name not in value:
            errors.append(f"{path}: missing required property {name!r}")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            _check(item, props[name], root, f"{path}.{name}", errors)
        elif extra is False:
            errors.append(f"{path}: unexpected property {name!r}")
        elif isinstance(extra, dict):
            _check(item, extra, root, f"{path}.{name}", errors)


def _check_array(value: list[Any], schema: dict[str, Any], root: Any, path: str, errors: list[str]) -> None:
    if isinstance(schema.get("minItems"), int) and len(value) < schema["minItems"]:
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if isinstance(schema.get("maxItems"), int) and len(value) > schema["maxItems"]:
        errors.append(f"{path}: more than {schema['maxItems']} items")
    raw = schema.get("prefixItems")
    prefix: list[Any] = raw if isinstance(raw, list) else []
    items = schema.get("items")
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else items
        if isinstance(sub, list):  # draft-4 tuple form
            sub = sub[i] if i < len(sub) else schema.get("additionalItems", True)
        _check(item, sub, root, f"{path}[{i}]", errors)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _type_name(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return type(value).__name__
