"""The schema checker's own process (`python -m moa_gateway.service.schema_check.worker`): it checks a
schema against its metaschema and answers against the schema, one job at a time, for the gateway that
started it. Jobs and replies are length-prefixed JSON on stdin and stdout. Running apart is what bounds
the work: the gateway kills this process when a job outlives its deadline, whatever it was doing (a
backtracking `pattern`, a $ref recursion the answer drives, `uniqueItems` over a long array).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import struct
import sys
import warnings
from collections import OrderedDict
from typing import IO, Any, NoReturn

import orjson
from jsonschema import exceptions, validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import NoSuchResource

HEADER = struct.Struct(">I")  # the length of the JSON that follows
MEMORY_BYTES = 1024**3  # address space: a job that needs more fails (`unknown`), the machine does not
_CACHED = 32  # compiled schemas kept: a client's next request usually brings the same schema


def _refuse(uri: str) -> NoReturn:
    """The registry's retrieval: nothing is ever fetched (the limits refused every such $ref already)."""
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # an attrs class, unseen by mypy


_REGISTRY: Registry[Any] = Registry(retrieve=_refuse)  # type: ignore[call-arg]
_compiled: OrderedDict[str, Validator] = OrderedDict()


def handle(job: dict[str, Any]) -> dict[str, Any]:
    """`compile`: {"ok"} or {"invalid": why}; `check`: {"fits"}, {"problem": why} or {"unknown": why}."""
    key = hashlib.sha256(orjson.dumps(job["schema"], option=orjson.OPT_SORT_KEYS)).hexdigest()
    validator = _compiled.get(key)
    if validator is None:
        try:
            validator = compile_schema(job["schema"])
        except exceptions.SchemaError as exc:
            return {"invalid": exc.message[:300]}
        except Exception as exc:  # e.g. a `$schema` that is not a string: the schema's fault, not ours
            return {"invalid": f"{type(exc).__name__}: {str(exc)[:200]}"}
        _compiled[key] = validator
        if len(_compiled) > _CACHED:
            _compiled.popitem(last=False)
    _compiled.move_to_end(key)
    if job["op"] == "compile":
        return {"ok": True}
    return check(validator, job["text"])


def compile_schema(schema: Any) -> Validator:
    """A validator for `schema` once its metaschema accepts it; raises SchemaError if it does not."""
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, registry=_REGISTRY)


def check(validator: Validator, text: str) -> dict[str, Any]:
    try:
        document = orjson.loads(unfenced(text))
    except orjson.JSONDecodeError as exc:
        return {"problem": f"the answer is not valid JSON ({exc})"}
    try:
        error = exceptions.best_match(validator.iter_errors(document))
    except Exception as exc:  # the schema cannot be applied (RecursionError, MemoryError...): no verdict
        return {"unknown": type(exc).__name__}
    if error is None:
        return {"fits": True}
    where = "/".join(str(part) for part in error.absolute_path) or "the top level"
    return {"problem": f"at {where}: {error.message[:300]}"}


def unfenced(text: str) -> str:
    """The JSON inside a ```json fence, which models add even when told not to."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped[3:-3]
        first_line, _, rest = stripped.partition("\n")
        return rest if first_line.strip().isalpha() or not first_line.strip() else stripped
    return stripped


def _read(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def main() -> None:
    """Serve jobs until the gateway closes stdin (or dies: the same end of file)."""
    warnings.simplefilter("ignore")  # e.g. an unknown `$schema`: nobody would read it
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, never into a reply
    jobs = sys.stdin.buffer
    while (head := _read(jobs, HEADER.size)) is not None:
        body = _read(jobs, HEADER.unpack(head)[0])
        if body is None:
            return
        reply = orjson.dumps(handle(orjson.loads(body)))
        replies.write(HEADER.pack(len(reply)) + reply)
        replies.flush()


if __name__ == "__main__":
    main()
