"""Values of a run: messages, usage, the pieces and answers of calls, call records and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from app.core.failures import FailureKind

Message = dict[str, Any]
Role = Literal["proposer", "aggregator", "direct"]
CallStatus = Literal["ok", "error", "skipped", "cancelled"]


@dataclass(frozen=True)
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


@dataclass(slots=True)  # not frozen: one is made per streamed token, and a frozen init costs ~3x
class Delta:
    """A piece of an answer as it streams: text, reasoning text, or tool-call fragments as sent."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] | None = None

    def __bool__(self) -> bool:
        return bool(self.text or self.reasoning or self.tool_calls)


@dataclass(frozen=True)
class Answer:
    """A finished call's answer."""

    text: str
    finish_reason: str
    usage: Usage
    cost_usd: float = 0.0
    ttft_s: float | None = None
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    logprobs: Any = None


@dataclass(frozen=True)
class CallSpec:
    """One upstream call the runner wants made."""

    layer: int  # 1..n for proposers; n+1 for the aggregator; 0 for a direct call
    role: Role
    model: str  # config alias
    messages: list[Message]
    params: dict[str, Any]


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class MoaResult:
    """A finished run: the answer, and every call it took."""

    pipeline: str | None  # None for a direct model call
    answer: Answer
    calls: list[CallRecord]
    upstream_wait_s: float = 0.0  # wall time spent waiting on layers and the final call
    dropped: list[str] = field(default_factory=list)  # proposers whose slot gave no answer
    answered_by: str = ""  # the model whose text is the answer
    degraded: str | None = None  # set when the answer is not the aggregator's, and why

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
