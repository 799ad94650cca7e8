"""What the gateway refuses in a `response_format` schema before any work: the sizes OpenAI's structured
outputs refuse, and what would make checking an answer unbounded or reach out of the request.

OpenAI's documented limits (Structured Outputs, "Supported schemas"): at most 5,000 object properties in
all, 10 levels of object nesting, 1,000 enum values, 120,000 characters of property names, definition
names and enum and const values, and 15,000 characters of values in one string enum of over 250 values.
Ours, for the same reason (bounded work): the schema's JSON at most `MAX_SCHEMA_BYTES`, at most
`MAX_SUBSCHEMAS` subschemas once every `$ref` is followed (a few KB of `$ref`s can fan out 2^40 ways),
subschemas nested at most `MAX_SUBSCHEMA_DEPTH` deep, and `$ref`s only as JSON pointers into the schema
itself: nothing is ever retrieved, so a reference elsewhere (`https://`, `file://`, another host) can
never be resolved and is refused here, as is a pointer to nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from moa_gateway.core.failures import Failure, FailureKind

PARAM = "response_format.json_schema.schema"
MAX_PROPERTIES = 5000
MAX_OBJECT_DEPTH = 10
MAX_ENUM_VALUES = 1000
MAX_NAME_CHARS = 120_000
LARGE_ENUM = 250  # a string enum with more values than this...
MAX_LARGE_ENUM_CHARS = 15_000  # ...has at most this many characters of values
MAX_SCHEMA_BYTES = 1024 * 1024
MAX_SUBSCHEMAS = 20_000
MAX_SUBSCHEMA_DEPTH = 64

# Where subschemas are, across drafts 4 to 2020-12: a value that is one, a list of them, a map of them.
_ONE = (
    *("additionalItems", "additionalProperties", "contains", "contentSchema", "else", "if", "items"),
    *("not", "propertyNames", "then", "unevaluatedItems", "unevaluatedProperties"),
)
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAP = ("$defs", "definitions", "dependentSchemas", "dependencies", "patternProperties", "properties")
_REFS = ("$ref", "$dynamicRef", "$recursiveRef")


def refused(why: str) -> Failure:
    return Failure(FailureKind.INVALID_REQUEST, f"{PARAM}: {why}", param=PARAM)


def check_limits(schema: dict[str, Any]) -> None:
    """Raises Failure (400) if `schema` is over a limit or has a `$ref` that cannot be resolved within it."""
    _Walk(schema).run()


@dataclass
class _Walk:
    root: dict[str, Any]
    properties: int = 0
    enum_values: int = 0
    name_chars: int = 0
    sizes: dict[int, int] = field(default_factory=dict)  # id(subschema) -> its size, $refs followed
    open: set[int] = field(default_factory=set)  # subschemas being sized: a $ref back is recursion

    def run(self) -> None:
        if self.size(self.root, depth=0, objects=0) > MAX_SUBSCHEMAS:
            raise refused(f"more than {MAX_SUBSCHEMAS} subschemas once its $refs are followed")

    def size(self, schema: Any, depth: int, objects: int) -> int:
        """How many subschemas checking an answer may visit from here (a recursive $ref counts once:
        recursion is bounded by the answer), capped just past the limit; counts the limits on the way."""
        if not isinstance(schema, dict):
            return 1  # true/false (or not a schema: the metaschema check says so)
        known = self.sizes.get(id(schema))
        if known is not None:
            return known
        if id(schema) in self.open:
            return 1
        if depth > MAX_SUBSCHEMA_DEPTH:
            raise refused(f"subschemas nested more than {MAX_SUBSCHEMA_DEPTH} deep (counting $refs)")
        self.open.add(id(schema))
        if isinstance(schema.get("properties"), dict):
            objects += 1
            if objects > MAX_OBJECT_DEPTH:
                raise refused(f"objects nested more than {MAX_OBJECT_DEPTH} levels deep")
        total = 1
        for child in self.children(schema):
            total = min(total + self.size(child, depth + 1, objects), MAX_SUBSCHEMAS + 1)
        self.open.discard(id(schema))
        self.sizes[id(schema)] = total  # ids stay valid: every subschema lives in `root` throughout
        return total

    def children(self, schema: dict[str, Any]) -> list[Any]:
        """The subschemas in `schema` and those its $refs point to; counts names and enums on the way."""
        found: list[Any] = []
        for key in _ONE:
            if isinstance(schema.get(key), dict | bool):
                found.append(schema[key])
        for key in _LIST:
            if isinstance(schema.get(key), list):
                found += schema[key]
        for key in _MAP:
            members = schema.get(key)
            if isinstance(members, dict):
                found += [m for m in members.values() if isinstance(m, dict | bool)]
                if key != "dependencies" and key != "dependentSchemas" and key != "patternProperties":
                    self.count_names(members, key)
        self.count_values(schema)
        for key in _REFS:
            if key in schema and isinstance(schema[key], str):
                found.append(self.target(key, schema[key]))
        return found

    def count_names(self, members: dict[str, Any], key: str) -> None:
        if key == "properties":
            self.properties += len(members)
            if self.properties > MAX_PROPERTIES:
                raise refused(f"more than {MAX_PROPERTIES} object properties in all")
        self.add_chars(sum(len(name) for name in members))

    def count_values(self, schema: dict[str, Any]) -> None:
        enum = schema.get("enum")
        if isinstance(enum, list):
            self.enum_values += len(enum)
            if self.enum_values > MAX_ENUM_VALUES:
                raise refused(f"more than {MAX_ENUM_VALUES} enum values in all")
            chars = sum(len(v) for v in enum if isinstance(v, str))
            if len(enum) > LARGE_ENUM and chars > MAX_LARGE_ENUM_CHARS:
                raise refused(
                    f"an enum of over {LARGE_ENUM} values with more than {MAX_LARGE_ENUM_CHARS} characters"
                )
            self.add_chars(chars)
        if isinstance(schema.get("const"), str):
            self.add_chars(len(schema["const"]))

    def add_chars(self, chars: int) -> None:
        self.name_chars += chars
        if self.name_chars > MAX_NAME_CHARS:
            raise refused(
                f"more than {MAX_NAME_CHARS} characters of property and definition names, enum and const values"
            )

    def target(self, key: str, ref: str) -> Any:
        """The subschema a `$ref` points to; only JSON pointers into the schema itself (`#`, `#/...`)."""
        shown = ref[:100]
        if not ref.startswith("#") or (len(ref) > 1 and not ref.startswith("#/")):
            raise refused(
                f"{key} {shown!r} cannot be resolved: only references within the schema ('#' or '#/...') "
                "are supported, nothing is retrieved"
            )
        target: Any = self.root
        for part in ref[2:].split("/") if len(ref) > 1 else []:
            part = unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and part in target:
                target = target[part]
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                raise refused(f"{key} {shown!r} cannot be resolved: it points to nothing in the schema")
        if not isinstance(target, dict | bool):
            raise refused(f"{key} {shown!r} points to something that is not a schema")
        return target
