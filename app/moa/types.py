"""Result types of the MoA core, and the protocol of the upstream backend it calls."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Message = dict[str, Any]
Role = Literal["proposer", "aggregator", "direct"]


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False  # counted by us because the upstream reported none
    cached_tokens: int = 0  # prompt tokens the provider served from its cache

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.estimated or other.estimated,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass(frozen=True)
class TopologyOverride:
    """A request's own proposer layers and/or aggregator for a pipeline."""

    layers: list[list[str]] | None = None
    aggregator: str | None = None


@dataclass(frozen=True)
class CallSpec:
    """One upstream call the engine wants made."""

    layer: int  # 1..n for proposers; n+1 for the aggregator; 0 for a direct call
    role: Role
    model: str  # config alias
    messages: list[Message]
    params: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: str
    usage: Usage
    cost_usd: float = 0.0
    ttft_s: float | None = None


class ChatBackend(Protocol):
    """What the engine needs from the upstream side; app/upstream implements it, tests fake it."""

    def admit(self, model: str) -> bool:
        """False while the model's circuit breaker is open: the engine skips it if it can."""
        ...

    async def complete(self, spec: CallSpec) -> Answer: ...

    def stream(self, spec: CallSpec) -> AsyncGenerator[str | Answer, None]:
        """Text deltas as they arrive, then exactly one final Answer."""
        ...


@dataclass(frozen=True)
class CallRecord:
    """What one upstream call of a request did, for the response's `moa` object."""

    layer: int
    role: Role
    model: str
    status: Literal["ok", "error", "skipped", "cancelled"]
    latency_s: float
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    ttft_s: float | None = None
    text: str | None = None
    error: str | None = None
    error_code: str | None = None  # the GatewayError code, e.g. upstream_timeout
    fallback_for: str | None = None  # this call stood in for that model, which failed


@dataclass(frozen=True)
class MoaResult:
    pipeline: str | None  # None for a direct model call
    text: str
    finish_reason: str
    calls: list[CallRecord]
    upstream_wait_s: float = 0.0  # wall time spent waiting on layers and the final call
    dropped: list[str] = field(default_factory=list)  # proposers whose slot gave no answer
    answered_by: str = ""  # the model whose text is the answer
    degraded: str | None = None  # set when the answer is not the aggregator's, and why

    @property
    def usage(self) -> Usage:
        total = Usage()
        for call in self.calls:
            total = total + call.usage
        return total

    @property
    def cost_usd(self) -> float:
        return sum(call.cost_usd for call in self.calls)
