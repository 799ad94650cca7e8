"""The simulator's schema answers (sim/schema.py) take bounded work whatever the schema asks: it runs in
the gateway's event loop when a pipeline uses the `simulated` provider."""

from __future__ import annotations

from typing import Any

from moa_gateway.sim.schema import instance


def nodes(value: Any) -> int:
    if isinstance(value, list):
        return 1 + sum(nodes(v) for v in value)
    if isinstance(value, dict):
        return 1 + sum(nodes(v) for v in value.values())
    return 1


def test_huge_minimums_are_cut_short() -> None:
    assert nodes(instance({"type": "array", "minItems": 10**6})) <= 10_001
    assert nodes(instance({"type": "object", "minProperties": 10**6})) <= 10_001
    assert len(instance({"type": "string", "minLength": 10**8})) == 10_000


def test_required_properties_that_recur_end() -> None:
    node = {"type": "object", "properties": {"x": {"$ref": "#"}, "y": {"$ref": "#"}}, "required": ["x", "y"]}

    value = instance(node)

    assert nodes(value) <= 10_001 + 64 * 2  # the budget, and a null for each property left at that point
    assert isinstance(value["x"], dict)


def test_ordinary_schemas_are_unchanged() -> None:
    schema = {
        "type": "object",
        "properties": {"tags": {"type": "array", "minItems": 3}},
        "required": ["tags"],
    }
    assert len(instance(schema)["tags"]) == 3
