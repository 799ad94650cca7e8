"""Values of a run: messages, usage, the pieces and answers of calls, call records and the result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from moa_gateway.core.failures import FailureKind
from moa_gateway.core.reports import (
    AgreementReport,
    BudgetReport,
    CacheHit,
    Degraded,
    EarlyExitReport,
    GateReport,
    RankingReport,
    SavedBy,
)

Message = dict[str, Any]
CallStatus = Literal["ok", "error", "skipped", "cancelled"]


@dataclass(slots=True)  # per upstream call: not frozen, a frozen init costs ~4x
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False  # counted by us because the upstream reported none
    cached_tokens: int = 0  # prompt tokens the provider served from its cache
    reasoning_tokens: int = 0  # completion tokens spent reasoning, where the provider says

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.estimated or other.estimated,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


# reviewer: ranks the other proposals for `aggregation: rank` (app/moa_gateway/core/final/rank.py);
# gate: a pipeline's gate model answering first; audit: a gate audit's run of the whole pipeline
Role = Literal[
    "proposer", "aggregator", "direct", "embedding", "shadow", "judge", "reviewer", "gate", "audit"
]


@dataclass(slots=True)  # not frozen: one is made per streamed token, and a frozen init costs ~3x
class Delta:
    """A piece of an answer as it streams: text, reasoning text, or tool-call fragments as sent, of
    choice `index` (more than one only when the client asked for `n` > 1)."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] | None = None
    index: int = 0
    logprobs: Any = None  # the provider's `logprobs` of this piece, passed through as sent

    def __bool__(self) -> bool:
        return bool(self.text or self.reasoning or self.tool_calls or self.logprobs)


@dataclass(frozen=True)
class Choice:
    """One choice of an answer (several when the client asked for `n` > 1)."""

    text: str
    finish_reason: str
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    logprobs: Any = None


@dataclass(slots=True)  # per upstream call: not frozen, a frozen init costs ~4x
class Answer:
    """A finished call's answer."""

    text: str
    finish_reason: str
    usage: Usage
    cost_usd: float = 0.0
    ttft_s: float | None = None
    reasoning: str | None = None  # the model's reasoning text (`reasoning_content`), where it sent one
    tool_calls: list[dict[str, Any]] | None = None  # as the model sent them
    logprobs: Any = None  # as the model sent them
    more_choices: tuple[Choice, ...] = ()  # choices 1..n-1

    def choices(self) -> list[Choice]:
        """Every choice, the first included, in index order."""
        first = Choice(self.text, self.finish_reason, self.reasoning, self.tool_calls, self.logprobs)
        return [first, *self.more_choices]


@dataclass(frozen=True)
class RunInput:
    """What a run is asked: the conversation and parameters as the acting (final) model gets them, and
    the advisory view the proposers get."""

    messages: list[Message]  # as the client sent them: for the aggregator or the direct model
    params: dict[str, Any]  # every field the client sent for the final call
    proposer_messages: list[Message]  # text only: tool calls and results rendered as text
    proposer_params: dict[str, Any]  # the sampling parameters only
    tools_forced: bool = False  # the client forces a tool call (`tool_choice` required or named)
    check_answer: Callable[[str], Awaitable[str | None]] | None = (
        None  # None if the text is fine, else why not
    )
    max_cost_usd: float | None = None  # the request's own budget (`moa.max_cost_usd`)
    audit_gate: bool = False  # sampled by `gate.audit_rate`: a gate pass is audited after the response

    @classmethod
    def plain(cls, messages: list[Message], params: dict[str, Any] | None = None) -> RunInput:
        """A text conversation that every call gets as it is, with the same parameters."""
        return cls(messages, params or {}, messages, params or {})


@dataclass(slots=True)  # per upstream call: not frozen, a frozen init costs ~4x
class CallSpec:
    """One upstream call the runner wants made."""

    layer: int  # 1..n for proposers; n+1 for the aggregator; 0 for a direct call
    role: Role
    model: str  # config alias
    messages: list[Message]
    params: dict[str, Any]


@dataclass(slots=True)  # per upstream call: not frozen, a frozen init costs ~4x
class CallRecord:
    """What one upstream call of a request did, for the response's `moa` object."""

    layer: int
    role: Role
    model: str
    status: CallStatus
    latency_s: float
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    ttft_s: float | None = None
    text: str | None = None
    error: str | None = None
    failure: FailureKind | None = None
    fallback_for: str | None = None  # this call stood in for that model, which failed
    tool_calls: int = 0  # tool calls the model's answer made (its first choice)


@dataclass(slots=True)  # per run: not frozen, a frozen init costs ~4x
class MoaResult:
    """A finished run: the answer, and every call it took."""

    pipeline: str | None  # None for a direct model call
    answer: Answer
    calls: list[CallRecord]
    upstream_wait_s: float = 0.0  # wall time spent waiting on layers and the final call
    dropped: list[str] = field(default_factory=list)  # proposers whose slot gave no answer
    answered_by: str = ""  # the model whose text is the answer
    degraded: Degraded | None = None  # set when the answer is not the aggregator's, and why
    early_exit: EarlyExitReport | None = None  # when proposers agreed (or, escalated, did not)
    budget: BudgetReport | None = None  # when a budget applied
    # upstream calls the plan named and the run did not make, by why (early exit, a reused user turn)
    calls_saved: dict[SavedBy, int] = field(default_factory=dict)
    references_reused: bool = False  # the proposals are the user turn's, kept from an earlier call
    agreement: AgreementReport | None = None  # how far the last layer's proposals agreed (two or more)
    rankings: RankingReport | None = None  # the peer ranking of `aggregation: rank`, when one was made
    gate: GateReport | None = None  # the pipeline's gate: its confidence, and whether its answer stood
    cache_hit: CacheHit | None = None  # replayed from the response cache: `calls` is empty

    @property
    def text(self) -> str:
        return self.answer.text

    @property
    def finish_reason(self) -> str:
        return self.answer.finish_reason

    @property
    def usage(self) -> Usage:
        total = Usage()
        for call in self.calls:
            total = total + call.usage
        return total

    @property
    def cost_usd(self) -> float:
        return sum(call.cost_usd for call in self.calls)
