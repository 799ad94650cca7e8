"""Chat completion as a use case: check a request against the limits, plan it, run it as events or to
its result. No HTTP here: the routes frame what this returns."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from app.core.events import Event
from app.core.failures import Failure, FailureKind
from app.core.plan import Catalogue, OverrideLimits, Plan, TopologyOverride, make_plan
from app.core.ports import RetryBudget, RunContext
from app.core.runner import Runner, RunOptions, collect
from app.core.types import Message, MoaResult
from app.wire.requests import ChatCompletionRequest


@dataclass(frozen=True)
class ChatLimits:
    max_messages: int = 1000
    overrides: OverrideLimits = field(default_factory=OverrideLimits)
    retry_budget: int = 4


@dataclass(frozen=True)
class ChatRun:
    """A checked, planned chat completion, ready to run."""

    plan: Plan
    messages: list[Message]
    params: dict[str, Any]
    stream: bool
    include_usage: bool
    include_proposals: bool


class ChatService:
    def __init__(self, runner: Runner, catalogue: Catalogue, limits: ChatLimits) -> None:
        self._runner = runner
        self._catalogue = catalogue
        self._limits = limits

    def prepare(self, request: ChatCompletionRequest) -> ChatRun:
        """Raises Failure: 400 over a limit or for a bad override, 404 for an unknown model."""
        if len(request.messages) > self._limits.max_messages:
            raise Failure(
                FailureKind.INVALID_REQUEST,
                f"messages: at most {self._limits.max_messages} messages",
                param="messages",
            )
        options = request.moa
        override = None
        if options.layers is not None or options.aggregator is not None:
            override = TopologyOverride(options.layers, options.aggregator)
        plan = make_plan(self._catalogue, request.model, override, self._limits.overrides)
        return ChatRun(
            plan,
            request.message_dicts(),
            request.sampling_params(),
            bool(request.stream),
            request.include_usage,
            options.include_proposals,
        )

    def events(self, run: ChatRun, *, proposer_deltas: bool = False) -> AsyncGenerator[Event, None]:
        """The run's events; the final answer's deltas come as events when the run is streamed."""
        context = RunContext(RetryBudget(self._limits.retry_budget))
        options = RunOptions(stream=run.stream, proposer_deltas=proposer_deltas)
        return self._runner.events(run.plan, run.messages, run.params, context, options)

    async def complete(self, run: ChatRun) -> MoaResult:
        """The run's result (the JSON answer is the events collected); raises its Failure."""
        return await collect(self.events(run))
