"""The static limits on `response_format` schemas (service/schema_check/limits.py): OpenAI's documented
limits, `$ref`s only within the schema, and bounded fan-out, all refused as 400s naming the param; and
the worker processes that run the rest under a deadline (service/schema_check/processes.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.service.schema_check.checker import SchemaChecks
from moa_gateway.service.schema_check.limits import check_limits


def refusal(schema: dict[str, Any]) -> str:
    with pytest.raises(Failure) as caught:
        check_limits(schema)
    assert caught.value.kind is FailureKind.INVALID_REQUEST
    assert caught.value.param == "response_format.json_schema.schema"
    return str(caught.value)


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


@pytest.mark.parametrize(
    "ref",
    [
        "http://127.0.0.1:9/s.json",
        "https://example.com/s.json#/x",
        "file:///etc/passwd",
        "other.json",
        "//host/s.json",
        "#anchor",
        "https://json-schema.org/draft/2020-12/schema",
    ],
)
def test_a_ref_out_of_the_schema_is_refused(ref: str) -> None:
    assert "nothing is retrieved" in refusal(obj(x={"$ref": ref}))


def test_a_pointer_to_nowhere_or_to_a_non_schema_is_refused() -> None:
    assert "points to nothing" in refusal({**obj(x={"$ref": "#/$defs/y"}), "$defs": {"x": {}}})
    assert "not a schema" in refusal({**obj(x={"$ref": "#/required"}), "required": ["x"]})


def test_local_pointers_recursion_and_escapes_are_accepted() -> None:
    check_limits(
        {
            **obj(a={"$ref": "#/$defs/a~1b"}, b={"$ref": "#/$defs/c%20d"}, c={"$ref": "#"}),
            "$defs": {"a/b": {"type": "string"}, "c d": {"items": {"$ref": "#/$defs/c d"}}},
            "anyOf": [{"$ref": "#/anyOf/1"}, True],
        }
    )


def test_a_small_schema_that_fans_out_2_to_the_40_is_refused_at_once() -> None:
    deep = {f"{i}": {"allOf": [{"$ref": f"#/$defs/{i + 1}"}] * 2} for i in range(40)}
    wide = {f"{i}": {"allOf": [{"$ref": f"#/$defs/{i + 1}"}] * 4} for i in range(20)}
    assert "nested more than 64 deep" in refusal({"$defs": {**deep, "40": {}}, "$ref": "#/$defs/0"})
    assert "more than 20000 subschemas" in refusal({"$defs": {**wide, "20": {}}, "$ref": "#/$defs/0"})


def test_openai_limits() -> None:
    assert "5000 object properties" in refusal(obj(**{f"p{i}": {} for i in range(5001)}))
    check_limits(obj(**{f"p{i}": {} for i in range(5000)}))
    nested: dict[str, Any] = {"type": "string"}
    for _ in range(10):
        nested = obj(x=nested)
    check_limits(nested)
    assert "nested more than 10 levels" in refusal(obj(x=nested))
    assert "1000 enum values" in refusal(obj(a={"enum": list(range(600))}, b={"enum": list(range(401))}))
    assert "over 250 values" in refusal({"enum": [f"{i:060d}" for i in range(251)]})
    check_limits({"enum": [f"{i:060d}" for i in range(250)]})
    assert "120000 characters" in refusal(obj(**{f"{i:030d}": {"const": "x" * 1000} for i in range(120)}))


async def test_a_check_that_outlives_its_deadline_is_stopped_and_the_next_one_works() -> None:
    checks = SchemaChecks(processes=1, timeout_s=1.0)
    try:
        check = await checks.checker(obj(s={"type": "string", "pattern": "^(a+)+$"}))
        start = time.monotonic()
        assert await check('{"s": "' + "a" * 40 + '!"}') is None  # no verdict: passed on unchecked
        assert time.monotonic() - start < 3.0, "stopped at its deadline (1 s), not run to its end"
        assert await check('{"s": "aaa"}') is None
        assert await check('{"s": "b"}') == "at s: 'b' does not match '^(a+)+$'"
        assert await check("not json") is not None
        with pytest.raises(Failure, match="not a valid JSON schema"):
            await checks.checker({"type": "nonsense"})
    finally:
        checks.close()
