"""The events of one run, in the order they happen; the runner's only output.

    RunStarted
      [CallStarted, CallFinished per gate sample; GateDecided]   (a `gate`: on a pass, the run ends here)
      LayerStarted (per proposer layer)
        CallStarted, [CallDelta...], CallFinished   (per call: fallbacks and skips are calls too)
      LayerFinished
      AgreementMeasured (the last layer's proposals, when two or more answered)
      CallStarted (final), [FinalDelta...], CallFinished
    RunFinished | RunFailed

Proposer `CallDelta`s are produced only when the consumer asks for them; `FinalDelta`s only when the
final answer is streamed. `collect()` folds the events into the JSON answer. Every `CallStarted` is
followed by its `CallFinished`, also when a deadline cut the call short; `slot` (the proposer's position
in its layer, 0 for the final call) tells apart calls of one layer to the same model, and a fallback's
call from the slot it stands in for.
"""

from __future__ import annotations

from dataclasses import dataclass

from moa_gateway.core.failures import Failure
from moa_gateway.core.reports import AgreementReport, GateReport
from moa_gateway.core.types import CallRecord, Delta, MoaResult, Role


@dataclass(slots=True)  # per run: not frozen, a frozen init costs ~4x
class RunStarted:
    model_id: str
    pipeline: str | None
    layers: int


@dataclass(slots=True)  # per run: not frozen, a frozen init costs ~4x
class LayerStarted:
    layer: int
    models: list[str]


@dataclass(slots=True)  # per upstream call: not frozen, a frozen init costs ~4x
class CallStarted:
    layer: int
    role: Role
    model: str
    at_s: float  # since the run started
    slot: int = 0


@dataclass(slots=True)  # per token: not frozen, for speed
class CallDelta:
    layer: int
    role: Role
    model: str
    delta: Delta
    slot: int = 0


@dataclass(slots=True)  # per upstream call: not frozen, a frozen init costs ~4x
class CallFinished:
    record: CallRecord
    at_s: float  # since the run started
    slot: int = 0


@dataclass(slots=True)  # per run: not frozen, a frozen init costs ~4x
class LayerFinished:
    layer: int
    answered: list[str]
    dropped: list[str]


@dataclass(slots=True)  # per run: not frozen, a frozen init costs ~4x
class AgreementMeasured:
    """How far the proposals the final phase reads agree (the response's `moa.agreement`)."""

    report: AgreementReport


@dataclass(frozen=True)
class GateDecided:
    """Whether the gate's answer stands or the pipeline runs, and why (the response's `moa.gate`)."""

    report: GateReport


@dataclass(slots=True)  # per token: not frozen, for speed
class FinalDelta:
    delta: Delta


@dataclass(slots=True)  # per run: not frozen, a frozen init costs ~4x
class RunFinished:
    result: MoaResult


@dataclass(frozen=True)
class RunFailed:
    failure: Failure


Event = (
    RunStarted
    | LayerStarted
    | CallStarted
    | CallDelta
    | CallFinished
    | LayerFinished
    | AgreementMeasured
    | GateDecided
    | FinalDelta
    | RunFinished
    | RunFailed
)
