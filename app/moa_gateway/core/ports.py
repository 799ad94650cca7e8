"""The interfaces the core needs from outside, implemented by adapters (upstream, telemetry) and fakes."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Protocol

from moa_gateway.core.caller import ANONYMOUS, Caller
from moa_gateway.core.failures import Failure
from moa_gateway.core.types import Answer, CallSpec, Delta

TraceContext = Mapping[str, str]
"""The W3C trace context (`traceparent`, `tracestate`) one upstream call carries so its span continues at
the provider: what the observer returns as the call starts, sent by the provider as headers; empty when
nothing traces the call."""


class RetryBudget:
    """Retries one run may spend across all its calls, so a fan-out cannot multiply a storm."""

    def __init__(self, retries: int) -> None:
        self.left = retries

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


@dataclass(frozen=True)
class ProviderEndpoint:
    """What telemetry calls a provider (`gen_ai.provider.name`) and the server it reaches, if any."""

    system: str
    address: str | None = None
    port: int | None = None


@dataclass
class RunContext:
    """Per-run state: the retries left (the backend needs them with every call), and who asked (the
    panel kept for a user turn is theirs alone)."""

    retry_budget: RetryBudget
    caller: Caller = ANONYMOUS


class ChatBackend(Protocol):
    """Makes upstream calls; app/moa_gateway/upstream implements it, tests fake it."""

    def admit(self, model: str) -> bool:
        """False while the model's circuit breaker is open: the runner skips it if it can."""
        ...

    def call(
        self, spec: CallSpec, context: RunContext, *, stream: bool
    ) -> AsyncGenerator[Delta | Answer, None]:
        """Deltas as they arrive (only when `stream`), then exactly one Answer; raises Failure."""
        ...


class CallObserver(Protocol):
    """Told of every upstream call's start, end, retry and circuit change: metrics, logs, traces."""

    def call_started(self, spec: CallSpec) -> TraceContext:
        """The call is about to be sent (once, however often it is retried); one of call_succeeded,
        call_failed or call_cancelled follows. Returns the trace context every attempt carries upstream."""
        ...

    def call_succeeded(self, spec: CallSpec, duration_s: float, answer: Answer) -> None: ...

    def call_failed(self, spec: CallSpec, duration_s: float, failure: Failure) -> None: ...

    def call_cancelled(self, spec: CallSpec, duration_s: float) -> None: ...

    def call_refused(self, spec: CallSpec, failure: Failure) -> None:
        """The call was not made: the request could not be sent (the client's fault)."""
        ...

    def call_retried(self, spec: CallSpec, failure: Failure, attempt: int, delay_s: float) -> None: ...

    def circuit_changed(self, model: str, state: str) -> None: ...
