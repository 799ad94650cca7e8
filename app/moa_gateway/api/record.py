"""The one typed record of a request that the route and the middleware share (on the ASGI scope)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from starlette.types import Scope

from moa_gateway.core.caller import ANONYMOUS, Caller
from moa_gateway.core.types import MoaResult
from moa_gateway.service.chat import AfterResponse

UNKNOWN_MODEL = "unknown"  # the metric label of a model id that names nothing configured
CLIENT_CLOSED = 499  # nginx's status for a request whose client left before the answer


@dataclass
class RequestRecord:
    started: float = field(default_factory=time.perf_counter)
    model: str = UNKNOWN_MODEL  # a config name once the request is planned: safe as a metric label
    stream: bool = False
    result: MoaResult | None = None
    # The status to record when it is not the one sent: a stream that failed after its 200, a client
    # that left (499), a body that did not arrive in time (408).
    status: int | None = None
    # Who sent it: set by the auth middleware from the key that matched; every per-caller store (the
    # stored responses) is scoped by it. With no gateway keys, every request is the one anonymous caller.
    caller: Caller = ANONYMOUS
    # What the route's service asked to start once the response is sent in full and succeeded (a shadow
    # evaluation); the after-response middleware runs it with `result`.
    after_response: AfterResponse = field(default_factory=list)


def record_of(scope: Scope) -> RequestRecord:
    """The scope's record, made on first use."""
    state = scope.setdefault("state", {})
    record = state.get("moa_record")
    if record is None:
        record = state["moa_record"] = RequestRecord()
    assert isinstance(record, RequestRecord)
    return record
