"""What a run reports about its own policies, as typed values: the wire serialises them and telemetry
reads their attributes, so no consumer depends on dict keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Degraded(StrEnum):
    """Why an answer is not the aggregator's own, checked answer."""

    AGGREGATOR_FAILED = "aggregator_failed"  # every aggregator failed: the first proposal stands in
    SCHEMA_INVALID = "schema_invalid"  # the answer still does not fit the requested schema


class Skipped(StrEnum):
    """What an early exit left out."""

    AGGREGATOR = "aggregator"  # the agreed proposal is the answer
    LAYERS = "layers"  # the remaining proposer layers


class SavedBy(StrEnum):
    """Why calls a pipeline names were not made."""

    EARLY_EXIT = "early_exit"  # proposers agreed: later layers (and maybe the aggregator) skipped
    USER_TURN = "user_turn"  # `fanout: user_turn`: the turn's proposals were reused
    GATE = "gate"  # the gate model was confident enough: no proposer and no aggregator called


@dataclass(frozen=True)
class EarlyExitReport:
    """Proposers agreed enough after `layer` (or, escalated, they did not and `escalate_to` answered)."""

    layer: int | None
    agreement: float | None
    skipped: Skipped | None
    escalated: bool = False

    def calls_saved(self, layer_sizes: list[int]) -> int:
        """Calls of the plan not made: the proposers of skipped layers, and the aggregator if skipped."""
        if self.skipped is None or self.layer is None:
            return 0
        later = sum(layer_sizes[self.layer :])
        return later + (1 if self.skipped is Skipped.AGGREGATOR else 0)


@dataclass(frozen=True)
class BudgetReport:
    """A budget applied: the limit, the estimate of the plan that fits it, and what was cut to fit."""

    max_usd: float
    estimated_usd: float
    actions: list[str] = field(default_factory=list)
    actual_usd: float | None = None  # set once the run is done


@dataclass(frozen=True)
class AgreementReport:
    """How far the proposals of the last layer that ran agree, by the measure early exit uses
    (app/moa_gateway/core/agreement.py): `score` is the share of them matching the most common answer
    (1/n when all n differ, 1.0 when all match); `dissent` names the proposers whose answers do not match
    it, when it is shared by two or more (when every answer stands alone, none is singled out)."""

    score: float
    method: str  # the measure: "normalized" or "similarity"
    layer: int  # the proposer layer whose answers were measured
    proposals: int  # how many answers were measured (two or more)
    dissent: list[str] = field(default_factory=list)  # the dissenting proposers' models, in slot order


@dataclass(frozen=True)
class RankedProposal:
    """A proposal's Borda points over the rankings counted, and its place (1 is the best)."""

    proposal: int  # its index among the last layer's proposals (slot order, those that answered)
    model: str
    points: int
    rank: int


@dataclass(frozen=True)
class DroppedRanking:
    """A reviewer whose ranking was not counted, and why (its call failed, or its ranking was malformed)."""

    reviewer: str
    reason: str


@dataclass(frozen=True)
class RankingReport:
    """What the peer ranking of `aggregation: rank` came to: every proposal, best first, and what was
    done with them (`then`: synthesize from the `top_k` best, or select the best)."""

    proposals: list[RankedProposal]
    reviewers: int  # rankings asked for
    counted: int  # rankings counted
    dropped: list[DroppedRanking] = field(default_factory=list)
    then: str = "synthesize"  # what was done: "synthesize" or "select"
    top_k: int = 0  # proposals the aggregator read (synthesize)


@dataclass(frozen=True)
class GateReport:
    """The gate's decision: the model that answered first, its confidence by `method` (agreement of its
    samples, or the confidence it reported), the threshold, whether its answer stood (`passed`), why,
    and whether the pass is audited (the pipeline runs after the response, and a judge compares)."""

    model: str
    method: str  # "agreement" | "self_report"
    confidence: float
    threshold: float
    passed: bool
    reason: str
    audited: bool = False


@dataclass(frozen=True)
class CacheHit:
    """The answer came from the exact response cache: no upstream call was made for it. What the run
    that answered first spent is reported as saved."""

    saved_usd: float
    saved_prompt_tokens: int
    saved_completion_tokens: int
    age_s: float  # since the answer was stored
