"""The MoA run: proposer layers, then the final call, as one async stream of events.

`events()` is the only producer; a streamed response consumes it as it comes, and the JSON answer is
`collect(events(...))`, so both modes are the same code. A pipeline deadline bounds every wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from typing import Any

from moa_gateway.core.aggregation import SELECT_PROMPT, rounds, selected
from moa_gateway.core.agreement import agreement
from moa_gateway.core.budget import fit_budget
from moa_gateway.core.chain import ChainWalker, Slot, Step
from moa_gateway.core.events import (
    Event,
    FinalDelta,
    LayerFinished,
    LayerStarted,
    RunFailed,
    RunFinished,
    RunStarted,
)
from moa_gateway.core.failures import Failure, FailureKind, combined_kind
from moa_gateway.core.fitting import check_conversation, fit_references, requested_output
from moa_gateway.core.layer import quorum_failure, run_layer
from moa_gateway.core.plan import Catalogue, EarlyExit, LayerPlan, ModelEntry, Plan
from moa_gateway.core.ports import ChatBackend, RunContext
from moa_gateway.core.prompts import final_answer, inject_references
from moa_gateway.core.tokens import count_prompt_tokens, count_tokens
from moa_gateway.core.types import Answer, CallRecord, Delta, Message, MoaResult, RunInput


@dataclass(frozen=True)
class RunOptions:
    stream: bool = False  # stream the final answer (FinalDelta events)
    proposer_deltas: bool = False  # stream proposers too (CallDelta events, as they arrive)


class Runner:
    def __init__(self, backend: ChatBackend, catalogue: Catalogue) -> None:
        self._backend = backend
        self._catalogue = catalogue

    async def events(
        self,
        plan: Plan,
        run: RunInput,
        context: RunContext,
        options: RunOptions = RunOptions(),
    ) -> AsyncGenerator[Event, None]:
        started = time.perf_counter()
        walker = ChainWalker(self._backend, self._catalogue, context, started)
        deadline = None if plan.deadline_s is None else asyncio.get_running_loop().time() + plan.deadline_s
        policy = plan.policy
        # The models that may act: the aggregator, and the one escalated to when proposers disagree.
        escalate_to = policy.early_exit.escalate_to if policy.early_exit else None
        acting = [self._catalogue.models[a] for a in (plan.final_chain[0], escalate_to) if a is not None]
        try:  # checked before any call: the conversation fits the acting models, the plan fits the budget
            for entry in acting:
                check_conversation(entry, run.messages, run.params)
            # A forced tool call with `tools_mode: bypass`: the aggregator alone answers.
            layers = [] if run.tools_forced and plan.tools_mode == "bypass" else plan.layers
            dearest = max(acting, key=lambda e: e.input_usd_per_mtok + e.output_usd_per_mtok)
            fit = fit_budget(
                self._catalogue,
                layers,
                dearest.alias,
                run.messages,
                run.proposer_params,
                run.params,
                max_usd=_lowest(run.max_cost_usd, policy.max_cost_usd),
                proposer_cap=policy.reference_max_tokens,
            )
        except Failure as failure:
            yield RunFailed(failure)
            return
        layers = fit.layers
        yield RunStarted(plan.model_id, plan.pipeline, len(layers))
        records: list[CallRecord] = []
        proposals: list[tuple[str, Answer]] = []
        dropped: list[str] = []
        waited_s = 0.0
        early: dict[str, Any] | None = None
        final_chain = plan.final_chain
        outcome = _FinalOutcome()
        try:
            for number, layer in enumerate(layers, 1):
                yield LayerStarted(number, list(layer.proposers))
                windows = [self._catalogue.models[alias] for alias in layer.proposers]
                layer_messages = self._fitted(
                    windows, run.proposer_messages, proposals, plan.prompt, run.proposer_params
                )
                layer_started = time.perf_counter()
                slots: list[Slot] = []
                layer_events = self._layer(
                    walker,
                    number,
                    layer,
                    layer_messages,
                    run.proposer_params,
                    deadline,
                    options,
                    slots,
                    fit.proposer_cap,
                )
                async with contextlib.aclosing(layer_events):
                    async for event in layer_events:
                        yield event
                waited_s += time.perf_counter() - layer_started
                for slot in slots:
                    records.extend(slot.records)
                proposals = [(s.answered_by, s.answer) for s in slots if s.answer is not None]
                missing = [s.primary for s in slots if s.answer is None]
                dropped += missing
                yield LayerFinished(number, [model for model, _ in proposals], missing)
                if len(proposals) < layer.min_proposers:
                    raise quorum_failure(number, layer, slots)
                if policy.early_exit is not None:
                    early = _early_exit(
                        policy.early_exit, proposals, number, layers, _proposal_may_answer(run)
                    )
                    if early is not None:
                        break
            if early is None and policy.early_exit is not None and policy.early_exit.escalate_to and layers:
                final_chain = self._catalogue.fallback_chain(policy.early_exit.escalate_to)
                early = {"layer": None, "agreement": None, "skipped": None, "escalated": True}
            final_started = time.perf_counter()
            if early is not None and early["skipped"] == "aggregator":
                outcome.chosen = early.pop("answer_index")
                if options.stream:
                    yield FinalDelta(Delta(text=proposals[outcome.chosen][1].text))
            else:
                if early is not None:
                    early.pop("answer_index", None)
                final_events = self._final(
                    walker, plan, run, final_chain, proposals, options, deadline, outcome
                )
                async with contextlib.aclosing(final_events):
                    async for event in final_events:
                        yield event
            records.extend(outcome.records)
            waited_s += time.perf_counter() - final_started
            result = _result(plan, proposals, outcome, records, waited_s, dropped)
            saved = _calls_saved(early, layers)
            budget = None if fit.report is None else {**fit.report, "actual_usd": round(result.cost_usd, 8)}
            result = replace(result, early_exit=early, budget=budget, calls_saved=saved)
            if outcome.problem is not None:
                result = replace(result, degraded="schema_invalid")
        except TimeoutError:
            late = _deadline_failure(plan)
            why = f"no answer within the pipeline deadline ({plan.deadline_s:g}s)"
            for ended in walker.abandoned(late.kind, why):  # the calls it cut short end too
                yield ended
            yield RunFailed(late)
            return
        except Failure as failure:
            yield RunFailed(failure)
            return
        if result.degraded == "aggregator_failed" and options.stream:
            # nothing was streamed yet: the stand-in answer goes out whole
            yield FinalDelta(Delta(text=result.text))
        yield RunFinished(result)

    async def _final(
        self,
        walker: ChainWalker,
        plan: Plan,
        run: RunInput,
        chain: list[str],
        proposals: list[tuple[str, Answer]],
        options: RunOptions,
        deadline: float | None,
        outcome: _FinalOutcome,
    ) -> AsyncGenerator[Event, None]:
        """The final call (or calls) and what came of it, in `outcome`: by the pipeline's aggregation,
        a selection of one proposal, sequential rounds, or one synthesis; checked against the schema."""
        step = Step(plan.final_layer, plan.final_role, final=True, stream=options.stream, deadline=deadline)
        advisory = replace(step, final=False, stream=False)  # rounds that prepare the final call
        acting = [self._catalogue.models[chain[0]]]
        policy = plan.policy
        if policy.aggregation == "select" and len(proposals) > 1 and _proposal_may_answer(run):
            pick = Slot(chain[0])
            messages = self._fitted(
                acting, run.proposer_messages, proposals, SELECT_PROMPT, run.proposer_params
            )
            async for event in self._walk(walker, chain, messages, run.proposer_params, pick, advisory):
                yield event
            outcome.records += pick.records
            index = None if pick.answer is None else selected(pick.answer.text, len(proposals))
            if index is not None:
                outcome.chosen = index
                if options.stream:
                    yield FinalDelta(Delta(text=proposals[index][1].text))
                return
            # no usable choice: synthesize, as by default
        if policy.aggregation == "sequential" and len(proposals) > policy.window:
            spans = rounds(len(proposals), policy.window)
            carry: list[tuple[str, Answer]] = []
            for first, last in spans[:-1]:
                part = Slot(chain[0])
                messages = self._fitted(
                    acting,
                    run.proposer_messages,
                    carry + proposals[first:last],
                    plan.prompt,
                    run.proposer_params,
                )
                async for event in self._walk(walker, chain, messages, run.proposer_params, part, advisory):
                    yield event
                outcome.records += part.records
                if part.answer is not None:
                    carry = [(part.answered_by, part.answer)]
            first, last = spans[-1]
            proposals = carry + proposals[first:last]
        final = Slot(chain[0])
        messages = self._fitted(acting, run.messages, proposals, plan.prompt, run.params)
        async for event in self._walk(walker, chain, messages, run.params, final, step):
            yield event
        outcome.records += final.records
        problem = _problem(run, final.answer)
        if problem is not None and not options.stream:  # once more, told what was wrong
            retry = Slot(chain[0])
            retry_messages = _corrected(messages, final.answer, problem)
            async for event in self._walk(walker, chain, retry_messages, run.params, retry, step):
                yield event
            outcome.records += retry.records
            if retry.answer is not None:
                final, problem = retry, _problem(run, retry.answer)
        outcome.final, outcome.problem = final, problem

    @staticmethod
    async def _walk(
        walker: ChainWalker,
        chain: list[str],
        messages: list[Message],
        params: dict[str, Any],
        slot: Slot,
        step: Step,
    ) -> AsyncGenerator[Event, None]:
        events = walker.walk(chain, messages, params, slot, step)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def _layer(
        self,
        walker: ChainWalker,
        number: int,
        layer: LayerPlan,
        messages: list[Message],
        params: dict[str, Any],
        deadline: float | None,
        options: RunOptions,
        slots: list[Slot],
        output_cap: int | None = None,
    ) -> AsyncGenerator[Event, None]:
        """The layer's events; its slots are left in `slots`. Without live deltas, the layer runs in this
        task and its events follow at its end; with them, it runs in a task of its own feeding a queue."""
        if not options.proposer_deltas:
            buffered: list[Event] = []
            try:
                async with asyncio.timeout_at(deadline):
                    slots += await run_layer(
                        walker,
                        self._catalogue,
                        number,
                        layer,
                        messages,
                        params,
                        buffered.append,
                        output_cap=output_cap,
                    )
            except TimeoutError:  # what the layer did before the pipeline deadline still goes out
                for event in buffered:
                    yield event
                raise
            for event in buffered:
                yield event
            return
        queue: asyncio.Queue[Event | None] = asyncio.Queue()

        async def work() -> list[Slot]:
            try:
                async with asyncio.timeout_at(deadline):
                    return await run_layer(
                        walker,
                        self._catalogue,
                        number,
                        layer,
                        messages,
                        params,
                        queue.put_nowait,
                        stream=True,
                        output_cap=output_cap,
                    )
            finally:
                queue.put_nowait(None)

        task = asyncio.create_task(work())
        try:
            while (item := await queue.get()) is not None:
                yield item
            slots += await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait(
                    [task]
                )  # unlike suppressing CancelledError, a cancel of ours still propagates

    @staticmethod
    def _fitted(
        readers: list[ModelEntry],
        messages: list[Message],
        proposals: list[tuple[str, Answer]],
        prompt: str,
        params: dict[str, Any],
    ) -> list[Message]:
        """`messages` with the proposals' final answers injected as references, shortened to fit the
        smallest context window among the models that will read them."""
        if not proposals:
            return messages
        references = [final_answer(answer.text) for _, answer in proposals]
        windows = [entry.context_window for entry in readers if entry.context_window is not None]
        if windows:
            room = (
                min(windows) - count_prompt_tokens(messages) - count_tokens(prompt) - requested_output(params)
            )
            references = fit_references(references, room)
        return inject_references(messages, references, prompt)


async def collect(events: AsyncGenerator[Event, None]) -> MoaResult:
    """The run's result (the JSON answer), or its Failure raised."""
    async with contextlib.aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, RunFinished):
                return event.result
            if isinstance(event, RunFailed):
                raise event.failure
    raise RuntimeError("the run ended without a result")


@dataclass
class _FinalOutcome:
    """What the final phase came to: the final call's slot, or the proposal chosen (select, early exit)."""

    records: list[CallRecord] = field(default_factory=list)
    final: Slot | None = None
    chosen: int | None = None  # index into the last layer's proposals
    problem: str | None = None  # why the final answer does not fit the requested schema


def _lowest(*limits: float | None) -> float | None:
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None


def _proposal_may_answer(run: RunInput) -> bool:
    """Can a proposal be the answer as it is? Not when the client offered tools or asked for a schema or
    several choices: proposers were never given those, so only the aggregator can honour them."""
    params = run.params
    asked = params.get("tools") or params.get("response_format") or (params.get("n") or 1) > 1
    return not asked and run.check_answer is None


def _early_exit(
    early_exit: EarlyExit,
    proposals: list[tuple[str, Answer]],
    number: int,
    layers: list[LayerPlan],
    may_answer: bool,
) -> dict[str, Any] | None:
    """The early exit a layer's agreeing proposals call for, if they agree enough: without
    `escalate_to` (and when a proposal may be the answer), the agreed proposal is the answer; else only
    the remaining layers are skipped and the pipeline's own aggregator answers."""
    if len(proposals) < 2:
        return None
    found = agreement([final_answer(a.text) for _, a in proposals], early_exit.match, early_exit.similarity)
    if found.share + 1e-9 < early_exit.agreement:
        return None
    if early_exit.escalate_to is None and may_answer:
        skipped: str | None = "aggregator"
    else:
        skipped = "layers" if number < len(layers) else None
    return {
        "layer": number,
        "agreement": round(found.share, 3),
        "skipped": skipped,
        "escalated": False,
        "answer_index": found.representative,
    }


def _calls_saved(early: dict[str, Any] | None, layers: list[LayerPlan]) -> int:
    """Calls of the plan not made: the proposers of skipped layers, and the aggregator if skipped."""
    if early is None or early["skipped"] is None:
        return 0
    later = sum(len(layer.proposers) for layer in layers[early["layer"] :])
    return later + (1 if early["skipped"] == "aggregator" else 0)


def _result(
    plan: Plan,
    proposals: list[tuple[str, Answer]],
    outcome: _FinalOutcome,
    records: list[CallRecord],
    waited_s: float,
    dropped: list[str],
) -> MoaResult:
    """The final call's answer (or the proposal chosen); if it gave none, the first proposal if the
    pipeline allows, else the error."""
    degraded = None
    if outcome.chosen is not None:
        model, answer = proposals[outcome.chosen]
        return MoaResult(plan.pipeline, answer, records, waited_s, dropped, model)
    final = outcome.final
    assert final is not None
    if final.answer is not None:
        answer, model = final.answer, final.answered_by
    elif plan.best_proposal_fallback and proposals:
        (model, answer), degraded = proposals[0], "aggregator_failed"
    else:
        raise _chain_failure(plan, final)
    return MoaResult(plan.pipeline, answer, records, waited_s, dropped, model, degraded)


def _problem(run: RunInput, answer: Answer | None) -> str | None:
    """What is wrong with a final text answer (it does not fit the requested schema), if anything."""
    if run.check_answer is None or answer is None or answer.tool_calls:
        return None
    return run.check_answer(answer.text)


def _corrected(messages: list[Message], answer: Answer | None, problem: str) -> list[Message]:
    """The final call's messages, its answer, and a request to answer again within the schema."""
    said = answer.text if answer is not None else ""
    return [
        *messages,
        {"role": "assistant", "content": said},
        {
            "role": "user",
            "content": "That answer does not match the required JSON schema: "
            f"{problem}\nAnswer again with only the JSON document, matching the schema.",
        },
    ]


def _chain_failure(plan: Plan, final: Slot) -> Failure:
    """The aggregator (or direct model) and every fallback failed."""
    if len(final.records) == 1 and final.last_failure is not None:
        return final.last_failure  # one model, one error: keep it as it was
    reasons = "; ".join(r.error or f"model {r.model}: failed" for r in final.records)
    what = "aggregator" if plan.pipeline else "model"
    message = f"{plan.model_id}: the {what} and its fallbacks all failed ({reasons})"
    kinds = {r.failure for r in final.records if r.failure is not None}
    return Failure(combined_kind(kinds), message, model=plan.final_chain[0])


def _deadline_failure(plan: Plan) -> Failure:
    return Failure(
        FailureKind.PIPELINE_DEADLINE,
        f"{plan.model_id}: no answer within the pipeline deadline ({plan.deadline_s:g}s)",
        model=plan.final_chain[0],
    )
