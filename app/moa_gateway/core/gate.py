"""`gate`: one model first, the panel only when it is unsure.

The gate model answers as the aggregator would (the client's messages and every field, tools included).
Its confidence is the agreement of `samples` answers sampled at once with different seeds (the measure
of app/moa_gateway/core/agreement.py), or the confidence it reports on a last line `Confidence: 0.83`,
asked for by an instruction in the system message and stripped from the answer. At or above the
threshold its answer is the response; below, the pipeline runs as configured, the gate's calls kept in
the run's calls and cost. The answer goes out whole, streamed or not: its confidence is known only once
it is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace

from moa_gateway.core.agreement import agreement
from moa_gateway.core.chain import ChainWalker, Slot
from moa_gateway.core.events import Event, FinalDelta, GateDecided
from moa_gateway.core.layer import run_layer
from moa_gateway.core.plan import Catalogue, Gate, LayerPlan, Plan
from moa_gateway.core.prompts import final_answer, with_instruction
from moa_gateway.core.reports import GateReport, SavedBy
from moa_gateway.core.types import Answer, CallRecord, Delta, MoaResult, RunInput

GATE_LAYER = 0  # the gate's calls come before layer 1; their slots are the samples' numbers
# The self-report protocol: appended to the system message (or a system message of its own, first).
# The simulator recognises it by the `Confidence: <a number from 0 to 1>` it quotes.
CONFIDENCE_INSTRUCTION = (
    "When you have answered, add one last line of its own, `Confidence: <a number from 0 to 1>`: how "
    "likely it is that your answer is correct and complete (for example `Confidence: 0.83`)."
)
_CONFIDENCE_LINE = re.compile(r"confidence\s*[:=]\s*(.*)", re.IGNORECASE)
_DECORATION = "*_`> \t"  # markdown a model may wrap the line in


@dataclass(frozen=True)
class SelfReport:
    """An answer's reported confidence: the text without its confidence line, and the confidence, or
    None with what was wrong (no such line, or not a number from 0 to 1)."""

    text: str
    confidence: float | None
    problem: str | None = None


def self_reported(text: str) -> SelfReport:
    """Read the trailing `Confidence: x` line (x from 0 to 1, or a percentage) and strip it."""
    lines = text.rstrip().split("\n")
    match = _CONFIDENCE_LINE.fullmatch(lines[-1].strip(_DECORATION)) if lines else None
    if match is None:
        return SelfReport(text, None, "no `Confidence:` line at the end of the answer")
    answer = "\n".join(lines[:-1]).rstrip()
    said = match.group(1).strip(_DECORATION)
    try:
        value = float(said[:-1]) / 100 if said.endswith("%") else float(said)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        return SelfReport(answer, None, f"a malformed confidence {said[:40]!r}")
    return SelfReport(answer, value)


@dataclass
class GateOutcome:
    """What the gate came to: its calls, its answer (when it gave one) and its report."""

    records: list[CallRecord] = field(default_factory=list)
    answer: Answer | None = None
    answered_by: str = ""
    report: GateReport | None = None
    waited_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.report is not None and self.report.passed and self.answer is not None

    def answer_events(self, stream: bool) -> list[Event]:
        """The answer, each choice whole, when the client streams (its confidence came at its end)."""
        if not stream or self.answer is None:
            return []
        return [
            FinalDelta(Delta(choice.text, choice.reasoning or "", _indexed(choice.tool_calls), index))
            for index, choice in enumerate(self.answer.choices())
        ]

    def result(self, plan: Plan) -> MoaResult:
        """The run's result when the gate's answer stands: every call of the pipeline saved."""
        assert self.answer is not None
        saved = sum(len(layer.proposers) for layer in plan.layers) + 1
        return MoaResult(
            plan.pipeline,
            self.answer,
            list(self.records),
            self.waited_s,
            answered_by=self.answered_by,
            calls_saved={SavedBy.GATE: saved},
            gate=self.report,
        )


async def ask_gate(
    walker: ChainWalker,
    catalogue: Catalogue,
    gate: Gate,
    run: RunInput,
    deadline: float | None,
    outcome: GateOutcome,
) -> AsyncGenerator[Event, None]:
    """The gate's calls (their events, once all are done), then its decision; its answer and report are
    left in `outcome`."""
    self_report = gate.confidence == "self_report"
    messages = with_instruction(run.messages, CONFIDENCE_INSTRUCTION) if self_report else run.messages
    samples = 1 if self_report else gate.samples
    buffered: list[Event] = []
    started = asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout_at(deadline):
            slots = await run_layer(
                walker,
                catalogue,
                GATE_LAYER,
                LayerPlan([gate.model] * samples),
                messages,
                run.params,
                buffered.append,
                role="gate",
                acting=True,
            )
    except TimeoutError:  # what the gate did before the pipeline deadline still goes out
        for event in buffered:
            yield event
        raise
    for event in buffered:
        yield event
    outcome.waited_s = asyncio.get_running_loop().time() - started
    for slot in slots:
        outcome.records += slot.records
    confidence, reason = _decide(gate, slots, outcome)
    if outcome.answer is not None and confidence >= gate.threshold:
        problem = await _schema_problem(run, outcome.answer)
        if problem is not None:
            confidence, reason = 0.0, f"its answer does not fit the requested schema ({problem})"
    passed = outcome.answer is not None and confidence + 1e-9 >= gate.threshold
    sign = ">=" if passed else "<"
    outcome.report = GateReport(
        gate.model,
        gate.confidence,
        round(confidence, 3),
        gate.threshold,
        passed,
        f"{reason} ({round(confidence, 3):g} {sign} {gate.threshold:g})",
        audited=passed and run.audit_gate,
    )
    yield GateDecided(outcome.report)


def _decide(gate: Gate, slots: list[Slot], outcome: GateOutcome) -> tuple[float, str]:
    """The confidence and why; the answer that would stand is left in `outcome`."""
    answered = [slot for slot in slots if slot.answer is not None]
    if not answered:
        why = "; ".join(r.error or f"model {r.model}: failed" for r in outcome.records[-1:])
        return 0.0, f"the gate model gave no answer: {why}"
    if gate.confidence == "self_report":
        slot = answered[0]
        assert slot.answer is not None
        report = self_reported(slot.answer.text)
        outcome.answer, outcome.answered_by = replace(slot.answer, text=report.text), slot.answered_by
        if report.confidence is None:
            return 0.0, f"{report.problem}: counted as 0"
        return report.confidence, f"the gate model reported confidence {report.confidence:g}"
    found = agreement([_compared(s.answer) for s in answered if s.answer], gate.match, gate.similarity)
    agreeing = round(found.share * len(answered))
    chosen = answered[found.representative]
    outcome.answer, outcome.answered_by = chosen.answer, chosen.answered_by
    return agreeing / len(slots), f"{agreeing} of {len(slots)} samples agree"


def _compared(answer: Answer | None) -> str:
    """What samples are compared by: the answer's text, and its tool calls (name and arguments)."""
    if answer is None:
        return ""
    calls = []
    for call in answer.tool_calls or []:
        function = call.get("function") or {}
        arguments = function.get("arguments", "")
        with contextlib.suppress(TypeError, ValueError):  # not JSON: compared as sent
            arguments = json.dumps(json.loads(arguments), sort_keys=True)
        calls.append(f"{function.get('name')}({arguments})")
    return "\n".join([final_answer(answer.text), *calls])


async def _schema_problem(run: RunInput, answer: Answer) -> str | None:
    if run.check_answer is None or answer.tool_calls:
        return None
    return await run.check_answer(answer.text)


def _indexed(calls: list[dict[str, object]] | None) -> list[dict[str, object]] | None:
    """Whole tool calls as stream fragments: each with its `index`."""
    return [{"index": i, **call} for i, call in enumerate(calls)] if calls else None
