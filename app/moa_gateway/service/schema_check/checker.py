"""Structured outputs: does an answer fit the JSON schema the client's `response_format` names?

A schema is refused (400) before any upstream call when it is over a limit or has a `$ref` that cannot
be resolved within it (limits.py). The rest of the work, the metaschema check and each answer's check,
runs in worker processes (processes.py) under a deadline. When a check has no verdict by then (or the
worker fails), the gateway cannot tell: the answer is passed on as it is, unchecked (no corrective call,
whose cost would be spent on an answer that may well fit), and a warning is logged.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.service.schema_check.limits import MAX_SCHEMA_BYTES, PARAM, check_limits, refused
from moa_gateway.service.schema_check.processes import TIMED_OUT, CheckProcesses

logger = logging.getLogger(__name__)
AnswerCheck = Callable[[str], Awaitable[str | None]]  # None if the text fits (or cannot be checked)
_REMEMBERED = 256  # schemas whose check ran out of time, not tried again (each try costs the deadline)


class SchemaChecks:
    """The schema checks of one gateway process: its worker processes, started on first use."""

    def __init__(self, processes: int, timeout_s: float) -> None:
        self._processes = CheckProcesses(processes, timeout_s)
        self._too_slow: OrderedDict[bytes, None] = OrderedDict()  # digests of such schemas

    async def checker(self, schema: dict[str, Any]) -> AnswerCheck:
        """A check of answer texts against `schema`: None when one fits, else what is wrong, in words an
        aggregator can act on. Raises Failure (400) for a schema that is refused or is not one."""
        try:
            encoded = orjson.dumps(schema)
        except orjson.JSONEncodeError:  # nested deeper than orjson writes (255): far past the limits
            raise refused("nested too deeply") from None
        if len(encoded) > MAX_SCHEMA_BYTES:
            raise refused(f"larger than {MAX_SCHEMA_BYTES} bytes of JSON")
        check_limits(schema)
        digest = hashlib.sha256(encoded).digest()
        if digest in self._too_slow:
            return _unchecked
        fragment = orjson.Fragment(encoded)
        verdict = await self._processes.run({"op": "compile", "schema": fragment})
        if isinstance(verdict, str):
            logger.warning(
                "structured outputs: answers will be passed on unchecked (the schema: %s)", verdict
            )
            if verdict == TIMED_OUT:  # the schema's own cost, not a busy moment
                self._too_slow[digest] = None
                if len(self._too_slow) > _REMEMBERED:
                    self._too_slow.popitem(last=False)
            return _unchecked
        if "invalid" in verdict:
            message = f"{PARAM}: not a valid JSON schema ({verdict['invalid']})"
            raise Failure(FailureKind.INVALID_REQUEST, message, param=PARAM)

        async def check(text: str) -> str | None:
            verdict = await self._processes.run({"op": "check", "schema": fragment, "text": text})
            if isinstance(verdict, str) or "unknown" in verdict:
                why = verdict if isinstance(verdict, str) else verdict["unknown"]
                logger.warning("structured outputs: an answer was passed on unchecked (%s)", why)
                return None
            problem = verdict.get("problem")
            return problem if isinstance(problem, str) else None

        return check

    @property
    def timeout_s(self) -> float:
        return self._processes.timeout_s

    def close(self) -> None:
        self._processes.close()


async def _unchecked(text: str) -> str | None:
    return None
