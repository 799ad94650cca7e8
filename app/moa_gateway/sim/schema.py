"""Deterministic JSON for a JSON schema: a value that fits it (structured outputs, tool arguments), and one
that does not (the `schema_invalid` fault).

The generator covers what structured outputs use: objects (every property, required ones first), strings
(`enum`, `const`, `minLength`/`maxLength`, a few `format`s), integers and numbers within their bounds and
`multipleOf`, booleans, arrays (`minItems`, else one item; `prefixItems`), null, `anyOf`/`oneOf` (the
first non-null option), `allOf` (merged), and `$ref` into `$defs`/`definitions`. `pattern` is not honoured.
The work is bounded whatever the schema asks (`minItems: 10**9`, required properties that recur): past
`_BUDGET` values, `_MAX_NESTING` levels or `_MAX_CHARS` characters a value is cut short (null, or a
shorter string), so such an answer may not fit.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, TypeVar

import orjson

T = TypeVar("T")
_WORDS = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor"]
_FORMATS = {
    "date": "2024-05-17",
    "date-time": "2024-05-17T12:00:00Z",
    "time": "12:00:00Z",
    "email": "someone@example.com",
    "idn-email": "someone@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "duration": "P1D",
}
_MAX_DEPTH = 8  # below this, only required properties and minItems items: recursive schemas end
_MAX_NESTING = 64  # below this, null: required properties that recur end too
_BUDGET = 10_000  # values in one answer
_MAX_CHARS = 10_000  # characters in one string
NOT_JSON = "I am sorry, but I cannot answer in JSON."  # what `breaking` says when no JSON breaks a schema


def instance(schema: Any, seed: int = 0) -> Any:
    """A JSON value valid under `schema`, deterministic in (schema, seed)."""
    return _Generator(schema, seed).value(schema, "$", 0)


def breaking(schema: Any) -> str:
    """Text that does not validate: JSON of a wrong shape (`{}` for an object with required properties),
    or, for a schema that accepts any JSON, text that is not JSON at all."""
    value = _outside(_Generator(schema, 0).resolve(schema))
    return NOT_JSON if value is _NOTHING else orjson.dumps(value).decode()


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


class _Generator:
    def __init__(self, root: Any, seed: int) -> None:
        self.root, self.seed = root, seed
        self.left = _BUDGET

    def pick(self, path: str, count: int) -> int:
        return _digest(str(self.seed), path) % count if count > 1 else 0

    def resolve(self, schema: Any) -> dict[str, Any]:
        """`schema` as an object, its `$ref` (a local JSON pointer) followed and merged with its siblings."""
        if not isinstance(schema, dict):
            return {}  # `true`: anything goes (`false` cannot be met; no caller sends it)
        for _ in range(32):
            ref = schema.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#"):
                break
            target: Any = self.root
            for part in filter(None, ref[1:].split("/")):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part, {}) if isinstance(target, dict) else {}
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**(target if isinstance(target, dict) else {}), **siblings}
        return dict(schema)

    def value(self, raw: Any, path: str, depth: int) -> Any:
        self.left -= 1
        if self.left < 0 or depth > _MAX_NESTING:
            return None
        schema = self.resolve(raw)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][self.pick(path, len(schema["enum"]))]
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, self.resolve(part))
            return self.value(merged, path, depth)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                resolved = [self.resolve(o) for o in options]
                chosen = next((o for o in resolved if o.get("type") != "null"), resolved[0])
                rest = {k: v for k, v in schema.items() if k != key}
                return self.value(_merge(rest, chosen), path, depth)
        kind = _type_of(schema)
        if kind == "object":
            return self.object(schema, path, depth)
        if kind == "array":
            return self.array(schema, path, depth)
        if kind == "integer" or kind == "number":
            return self.number(schema, path, kind == "integer")
        if kind == "boolean":
            return self.pick(path, 2) == 1
        if kind == "null":
            return None
        return self.string(schema, path)

    def object(self, schema: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
        properties = _field(schema, "properties", dict, {})
        required = [r for r in _field(schema, "required", list, []) if isinstance(r, str)]
        names = list(dict.fromkeys([*required, *properties]))
        if depth >= _MAX_DEPTH:
            names = required
        result = {name: self.value(properties.get(name, {}), f"{path}.{name}", depth + 1) for name in names}
        minimum = _field(schema, "minProperties", int, 0)
        extra = schema.get("additionalProperties", True)
        if extra is not False:
            for i in range(len(result), min(minimum, len(result) + max(self.left, 0))):
                key = f"extra_{i}"
                result[key] = self.value(extra if isinstance(extra, dict) else {}, f"{path}.{key}", depth + 1)
        return result

    def array(self, schema: dict[str, Any], path: str, depth: int) -> list[Any]:
        prefix = _field(schema, "prefixItems", list, [])
        items = schema.get("items", {})
        count = max(
            _field(schema, "minItems", int, 0),
            len(prefix),
            1 if depth < _MAX_DEPTH and items is not False else 0,
        )
        count = min(count, _field(schema, "maxItems", int, count), max(self.left, 0))
        result: list[Any] = []
        for i in range(count):
            item_schema = prefix[i] if i < len(prefix) else items
            value = self.value(item_schema, f"{path}[{i}]", depth + 1)
            for salt in range(1, 8):  # `uniqueItems`: another deterministic try
                if not schema.get("uniqueItems") or value not in result:
                    break
                value = self.value(item_schema, f"{path}[{i}]#{salt}", depth + 1)
            result.append(value)
        return result

    def number(self, schema: dict[str, Any], path: str, integer: bool) -> int | float:
        low, high = (
            _bound(schema, "minimum", "exclusiveMinimum"),
            _bound(schema, "maximum", "exclusiveMaximum"),
        )
        lo = low[0] if low else (high[0] - 100 if high else 0)
        hi = high[0] if high else lo + 100
        step = schema.get("multipleOf")
        if not isinstance(step, int | float) or isinstance(step, bool) or step <= 0:
            step = None
        if step is not None or integer:
            step = step or 1
            first, last = math.ceil(lo / step), math.floor(hi / step)
            if low and low[1] and first * step <= lo:  # an exclusive bound is left by one step
                first += 1
            if high and high[1] and last * step >= hi:
                last -= 1
            value = (first + self.pick(path, max(1, last - first + 1))) * step
            return int(value) if integer and value == int(value) else value
        if lo == hi:
            return lo
        exact = lo + (hi - lo) * (1 + self.pick(path, 99)) / 100  # strictly inside: exclusive bounds hold
        rounded = round(exact, 4)
        return rounded if lo < rounded < hi else exact

    def string(self, schema: dict[str, Any], path: str) -> str:
        fmt = schema.get("format")
        if fmt == "uuid":
            hexa = f"{_digest(str(self.seed), path):016x}{_digest(path, str(self.seed)):016x}"
            return f"{hexa[:8]}-{hexa[8:12]}-4{hexa[13:16]}-8{hexa[17:20]}-{hexa[20:32]}"
        text = _FORMATS.get(fmt) if isinstance(fmt, str) else None
        if text is None:
            text = f"{_WORDS[self.pick(path, len(_WORDS))]} {_WORDS[self.pick(path + '/2', len(_WORDS))]}"
        text += "x" * (min(_field(schema, "minLength", int, 0), _MAX_CHARS) - len(text))
        return text[: _field(schema, "maxLength", int, len(text))]


def _field(schema: dict[str, Any], key: str, kind: type[T], default: T) -> T:
    """`schema[key]` if it is a `kind` (never a bool for an int), else `default`."""
    value = schema.get(key)
    return value if isinstance(value, kind) and not (kind is int and isinstance(value, bool)) else default


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if isinstance(kind, str):
        return kind
    if any(k in schema for k in ("properties", "required", "additionalProperties", "minProperties")):
        return "object"
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return "string"


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str) -> tuple[float, bool] | None:
    """A bound and whether it is exclusive (draft 4's boolean `exclusiveMinimum` included)."""
    value = schema.get(exclusive)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value, True
    value = schema.get(inclusive)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value, schema.get(exclusive) is True
    return None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Two schemas as one (for allOf): properties and required lists are joined, other keywords overlaid."""
    merged = {**base, **extra}
    if isinstance(base.get("properties"), dict) and isinstance(extra.get("properties"), dict):
        merged["properties"] = {**base["properties"], **extra["properties"]}
    if isinstance(base.get("required"), list) and isinstance(extra.get("required"), list):
        merged["required"] = list(dict.fromkeys([*base["required"], *extra["required"]]))
    return merged


_NOTHING = object()
# One value of each JSON type, in the order tried; 1.5 is a number but not an integer.
_SAMPLES: list[tuple[str, Any]] = [
    ("object", {}),
    ("array", []),
    ("string", ""),
    ("number", 1.5),
    ("boolean", True),
    ("null", None),
]


def _outside(schema: dict[str, Any]) -> Any:
    """A value `schema` rejects, or _NOTHING."""
    if isinstance(schema.get("required"), list) and schema["required"] and _type_of(schema) == "object":
        return {}  # a real model's usual mistake: the object, without its fields
    types: set[str] = set()
    kind = schema.get("type")
    if isinstance(kind, str | list):
        types = {kind} if isinstance(kind, str) else {k for k in kind if isinstance(k, str)}
    elif isinstance(schema.get("enum"), list) or "const" in schema:
        allowed = schema.get("enum", [schema.get("const")])
        return next((v for _, v in _SAMPLES if v not in allowed), "not one of them")
    else:
        options = schema.get("anyOf") or schema.get("oneOf")
        if not isinstance(options, list) or not all(isinstance(o, dict) and "type" in o for o in options):
            return _NOTHING
        for option in options:
            kind = option["type"]
            types |= {kind} if isinstance(kind, str) else set(kind)
    return next((v for name, v in _SAMPLES if name not in types), _NOTHING)
