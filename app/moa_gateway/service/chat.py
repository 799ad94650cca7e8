"""Chat completion as a use case: check a request against the limits, plan it, run it as events or to
its result. No HTTP here: the routes frame what this returns."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from moa_gateway.core.advice import advisory_messages
from moa_gateway.core.caller import Caller
from moa_gateway.core.events import Event
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import Catalogue, OverrideLimits, Plan, TopologyOverride, make_plan
from moa_gateway.core.ports import RetryBudget, RunContext
from moa_gateway.core.runner import Runner, RunOptions, collect
from moa_gateway.core.types import MoaResult, RunInput
from moa_gateway.service.cache import BYPASSED, CacheLookup, CacheStatus, ResponseCache
from moa_gateway.service.schema_check.checker import SchemaChecks
from moa_gateway.wire.requests import ChatCompletionRequest

AfterResponse = list[Callable[[MoaResult], None]]
"""Work to start with a request's result once its response has been sent in full and succeeded (its
shadow evaluation, its gate's audit). The HTTP edge keeps the list on its request record and hands it to `prepare`; what
runs in-process (an eval, a script) passes none, so none is added."""


@dataclass(frozen=True)
class ChatLimits:
    max_messages: int = 1000
    overrides: OverrideLimits = field(default_factory=OverrideLimits)
    retry_budget: int = 4
    tool_result_chars: int = 4000  # a tool result longer than this reaches proposers cut in the middle
    max_tools: int = 128  # OpenAI's own limit on the functions one request may offer


@dataclass(frozen=True)
class ChatRun:
    """A checked, planned chat completion, ready to run."""

    plan: Plan
    input: RunInput
    stream: bool
    choices: int  # the client's `n`
    include_usage: bool
    include_proposals: bool
    stream_events: bool = False  # `moa.stream_events`: the run's layer and call events go out live too
    caller: Caller = field(kw_only=True)  # who asked: what the run keeps for a user turn is theirs alone
    cache: CacheLookup = field(default=BYPASSED, kw_only=True)  # a hit is replayed, a miss's answer kept


AfterPrepare = Callable[[ChatCompletionRequest, ChatRun, AfterResponse], ChatRun]
"""Told of a prepared run of live traffic, with the request's after-response list: it may put work on
the list, and returns the run to make (the same, or marked: a gate pass sampled for audit says so)."""


class ChatService:
    def __init__(
        self,
        runner: Runner,
        catalogue: Catalogue,
        limits: ChatLimits,
        schema_checks: SchemaChecks,
        after_prepare: AfterPrepare | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self._runner = runner
        self._catalogue = catalogue
        self._limits = limits
        self._schema_checks = schema_checks
        # Told of every prepared run of live traffic: shadow evaluation and gate audits sample them.
        self._after_prepare = after_prepare
        self._cache = cache  # the exact response cache, for the routes that ask for it

    def check_tool_count(self, count: int) -> None:
        """At most MOA_MAX_TOOLS tools; else a 400 naming `tools`. Checked before any work that grows
        with the tools (another API's translation too), so thousands of them cannot hold the worker."""
        if count > self._limits.max_tools:
            raise Failure(
                FailureKind.INVALID_REQUEST,
                f"tools: at most {self._limits.max_tools} tools (MOA_MAX_TOOLS)",
                param="tools",
            )

    async def prepare(
        self,
        request: ChatCompletionRequest,
        caller: Caller,
        after_response: AfterResponse | None = None,
        *,
        cache: bool = False,
    ) -> ChatRun:
        """`caller` is who sent it (the request record's). Raises Failure: 400 over a limit or for a bad
        override, 404 for an unknown model. Work for after the response (a sampled shadow evaluation) goes onto `after_response`, if given.
        With `cache`, the request is looked up in the response cache (if the model has one): a hit is
        the answer its run replays, with no upstream call, and is not shadow-evaluated again."""
        if len(request.messages) > self._limits.max_messages:
            raise Failure(
                FailureKind.INVALID_REQUEST,
                f"messages: at most {self._limits.max_messages} messages",
                param="messages",
            )
        self.check_tool_count(len(request.tools or ()))
        options = request.moa
        if options.stream_events and not request.stream:
            raise Failure(
                FailureKind.INVALID_REQUEST,
                "moa.stream_events: live events need `stream: true`",
                param="moa.stream_events",
            )
        override = None
        if options.layers is not None or options.aggregator is not None:
            override = TopologyOverride(options.layers, options.aggregator)
        plan = make_plan(self._catalogue, request.model, override, self._limits.overrides)
        lookup = BYPASSED
        if cache and self._cache is not None:
            lookup = await self._cache.lookup(request, caller, plan.model_id)
        schema = request.json_schema() if lookup.hit is None else None
        check_answer = None if schema is None else await self._schema_checks.checker(schema)
        messages = request.message_dicts()
        run_input = RunInput(
            messages,
            request.final_params(),
            advisory_messages(
                messages, tools_offered=request.tools_offered, result_chars=self._limits.tool_result_chars
            ),
            request.proposer_params(),
            tools_forced=request.tools_forced,
            check_answer=check_answer,
            max_cost_usd=options.max_cost_usd,
        )
        run = ChatRun(
            plan,
            run_input,
            bool(request.stream),
            request.n or 1,
            request.include_usage,
            options.include_proposals,
            stream_events=options.stream_events,
            caller=caller,
            cache=lookup,
        )
        if self._after_prepare is not None and after_response is not None and lookup.hit is None:
            run = self._after_prepare(request, run, after_response)
        return run

    def events(self, run: ChatRun, *, proposer_deltas: bool = False) -> AsyncGenerator[Event, None]:
        """The run's events; the final answer's deltas come as events when the run is streamed. A cache
        hit's are its answer's, replayed; a miss's answer is stored as the run finishes."""
        if self._cache is not None and (replay := self._cache.answered(run.cache, run.stream)) is not None:
            return replay
        context = RunContext(RetryBudget(self._limits.retry_budget), run.caller)
        options = RunOptions(stream=run.stream, proposer_deltas=proposer_deltas)
        events = self._runner.events(run.plan, run.input, context, options)
        if self._cache is not None and run.cache.status is CacheStatus.MISS:
            events = self._cache.storing(run.cache, events)
        return events

    async def complete(self, run: ChatRun) -> MoaResult:
        """The run's result (the JSON answer is the events collected); raises its Failure."""
        return await collect(self.events(run))
