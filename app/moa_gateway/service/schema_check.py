"""Structured outputs: does an answer fit the JSON schema the client's `response_format` names?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from jsonschema import exceptions, validators

from moa_gateway.core.failures import Failure, FailureKind

_PARAM = "response_format.json_schema.schema"


def schema_checker(schema: dict[str, Any]) -> Callable[[str], str | None]:
    """A check of answer texts against `schema`: None when one fits, else what is wrong, in words an
    aggregator can act on. A schema that is not one is the request's fault (400)."""
    try:
        cls = validators.validator_for(schema)
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        raise _invalid(exc.message) from None
    except Exception as exc:  # e.g. a `$schema` that is not a string: the schema's fault, not ours
        raise _invalid(f"{type(exc).__name__}: {str(exc)[:200]}") from None
    validator = cls(schema)

    def check(text: str) -> str | None:
        try:
            document = orjson.loads(_unfenced(text))
        except orjson.JSONDecodeError as exc:
            return f"the answer is not valid JSON ({exc})"
        try:
            error = exceptions.best_match(validator.iter_errors(document))
        except Exception:  # the schema cannot be applied (an unresolvable $ref): nothing to hold it to
            return None
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path) or "the top level"
        return f"at {where}: {error.message[:300]}"

    return check


def _invalid(why: str) -> Failure:
    return Failure(FailureKind.INVALID_REQUEST, f"{_PARAM}: not a valid JSON schema ({why})", param=_PARAM)


def _unfenced(text: str) -> str:
    """The JSON inside a ```json fence, which models add even when told not to."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped[3:-3]
        first_line, _, rest = stripped.partition("\n")
        return rest if first_line.strip().isalpha() or not first_line.strip() else stripped
    return stripped
