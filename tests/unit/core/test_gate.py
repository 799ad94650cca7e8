"""`gate`: one model first. Its samples' agreement (or the confidence it reports) decides whether its
answer is the response or the pipeline runs, and `moa.gate` says which and why."""

from __future__ import annotations

from typing import Any

import pytest

from moa_gateway.core.events import Event, FinalDelta, GateDecided, RunFinished
from moa_gateway.core.gate import CONFIDENCE_INSTRUCTION, self_reported
from moa_gateway.core.plan import make_plan
from moa_gateway.core.ports import RetryBudget, RunContext
from moa_gateway.core.reports import SavedBy
from moa_gateway.core.runner import Runner, RunOptions, collect
from moa_gateway.core.types import CallSpec, MoaResult, RunInput
from tests.support.core_fakes import QUESTION, FakeBackend, catalogue_with, down

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def gated(backend: FakeBackend, **gate: Any) -> Runner:
    return Runner(backend, catalogue_with(layers=1, gate={"model": "gamma", **gate}))


async def run_gated(backend: FakeBackend, params: dict[str, Any] | None = None, **gate: Any) -> MoaResult:
    runner = gated(backend, **gate)
    plan = make_plan(catalogue_with(layers=1, gate={"model": "gamma", **gate}), "moa")
    return await collect(runner.events(plan, RunInput.plain(QUESTION, params), RunContext(RetryBudget(0))))


def by_seed(spec: CallSpec) -> str:
    """Samples that disagree: each seed its own answer."""
    return f"{spec.model} says {spec.params.get('seed')}"


async def test_agreeing_samples_answer_alone_and_say_why() -> None:
    backend = FakeBackend()  # every sample of gamma answers the same
    result = await run_gated(backend, samples=3, threshold=0.8)

    assert [(c.role, c.model, c.layer) for c in result.calls] == [("gate", "gamma", 0)] * 3
    assert len(backend.calls) == 3  # no proposer, no aggregator
    assert sorted(spec.params["seed"] for spec in backend.calls) == [0, 1, 2]  # samples differ
    assert result.text == "gamma@L0" and result.answered_by == "gamma"
    gate = result.gate
    assert gate is not None and gate.passed and not gate.audited
    assert (gate.model, gate.method, gate.confidence, gate.threshold) == ("gamma", "agreement", 1.0, 0.8)
    assert gate.reason == "3 of 3 samples agree (1 >= 0.8)"
    assert result.calls_saved == {SavedBy.GATE: 4}  # three proposers and the aggregator
    assert result.cost_usd == pytest.approx(1.5)


async def test_disagreeing_samples_escalate_to_the_pipeline_and_count_in_its_cost() -> None:
    backend = FakeBackend(reply=lambda spec: by_seed(spec) if spec.role == "gate" else "fine")
    result = await run_gated(backend, samples=3, threshold=0.6)

    roles = [c.role for c in result.calls]
    assert roles == ["gate"] * 3 + ["proposer"] * 3 + ["aggregator"]
    assert result.answered_by == "omega" and result.text == "fine"
    gate = result.gate
    assert gate is not None and not gate.passed and gate.confidence == pytest.approx(0.333)
    assert gate.reason == "1 of 3 samples agree (0.333 < 0.6)"
    assert result.cost_usd == pytest.approx(7 * 0.5)  # the gate's calls are paid for too
    assert SavedBy.GATE not in result.calls_saved


async def test_a_failed_sample_counts_as_disagreeing_and_a_silent_gate_escalates() -> None:
    def third_fails(spec: CallSpec) -> str:
        if spec.params.get("seed") == 2:
            raise down("gamma")
        return "same"

    two_of_three = await run_gated(FakeBackend(reply=third_fails), samples=3, threshold=0.6)
    assert two_of_three.gate is not None and two_of_three.gate.passed
    assert two_of_three.gate.reason == "2 of 3 samples agree (0.667 >= 0.6)"
    assert [c.status for c in two_of_three.calls] == ["ok", "ok", "error"]

    backend = FakeBackend(failing={"gamma": down("gamma")})
    result = await run_gated(backend, samples=2)

    gate = result.gate
    assert gate is not None and not gate.passed and gate.confidence == 0
    assert gate.reason.startswith("the gate model gave no answer: model gamma: down")
    assert result.answered_by == "omega"


async def test_the_gate_gets_what_the_aggregator_gets_tools_included() -> None:
    backend = FakeBackend()
    params = {"tools": TOOLS, "temperature": 0.2, "seed": 40}
    await run_gated(backend, params, samples=2)

    for spec in backend.calls:
        assert spec.role == "gate" and spec.messages == QUESTION
        assert spec.params["tools"] == TOOLS and spec.params["temperature"] == 0.2
    assert sorted(spec.params["seed"] for spec in backend.calls) == [40, 41]  # the client's, per sample


@pytest.mark.parametrize(
    ("text", "answer", "confidence"),
    [
        ("Paris.\nConfidence: 0.83", "Paris.", 0.83),
        ("Paris.\n\n**Confidence:** 83%\n", "Paris.", 0.83),
        ("Paris.\nconfidence = 1", "Paris.", 1.0),
        ("Confidence: .5", "", 0.5),
    ],
)
def test_a_reported_confidence_is_read_and_stripped(text: str, answer: str, confidence: float) -> None:
    report = self_reported(text)
    assert (report.text, report.confidence, report.problem) == (answer, confidence, None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Paris.", "no `Confidence:` line at the end of the answer"),
        ("Confidence: 0.9\nParis.", "no `Confidence:` line at the end of the answer"),
        ("Paris.\nConfidence: high", "a malformed confidence 'high'"),
        ("Paris.\nConfidence: 1.7", "a malformed confidence '1.7'"),
    ],
)
def test_a_missing_or_malformed_confidence_is_none_and_says_why(text: str, problem: str) -> None:
    report = self_reported(text)
    assert report.confidence is None and report.problem == problem


async def test_a_confident_self_report_is_the_answer_without_its_confidence_line() -> None:
    backend = FakeBackend(reply=lambda spec: "Two.\nConfidence: 0.9")
    result = await run_gated(backend, confidence="self_report", threshold=0.8)

    assert len(backend.calls) == 1  # one call, whatever `samples` says
    assert backend.calls[0].messages[0] == {"role": "system", "content": CONFIDENCE_INSTRUCTION}
    assert "seed" not in backend.calls[0].params  # one call: the client's own seed, none here
    assert result.text == "Two." and result.calls[0].role == "gate"
    gate = result.gate
    assert gate is not None and gate.passed and gate.method == "self_report"
    assert gate.reason == "the gate model reported confidence 0.9 (0.9 >= 0.8)"


async def test_a_missing_self_report_counts_as_zero_and_says_so() -> None:
    backend = FakeBackend(reply=lambda spec: "Two." if spec.role == "gate" else "synthesised")
    result = await run_gated(backend, confidence="self_report", threshold=0.1)

    gate = result.gate
    assert gate is not None and not gate.passed and result.text == "synthesised"
    assert gate.confidence == 0
    assert gate.reason == "no `Confidence:` line at the end of the answer: counted as 0 (0 < 0.1)"


async def test_a_streamed_pass_sends_the_answer_whole() -> None:
    backend = FakeBackend(reply=lambda spec: "Two.\nConfidence: 0.95")
    runner = gated(backend, confidence="self_report")
    plan = make_plan(catalogue_with(layers=1, gate={"model": "gamma", "confidence": "self_report"}), "moa")
    stream = runner.events(
        plan, RunInput.plain(QUESTION), RunContext(RetryBudget(0)), RunOptions(stream=True)
    )
    events: list[Event] = [event async for event in stream]

    deltas = [e.delta.text for e in events if isinstance(e, FinalDelta)]
    assert deltas == ["Two."]  # not the confidence line, not the gate call's own pieces
    assert backend.streamed == [False]
    assert isinstance(events[-1], RunFinished) and events[-1].result.text == "Two."


@pytest.mark.parametrize(("same", "after"), [(True, "FinalDelta"), (False, "LayerStarted")])
async def test_the_decision_is_an_event_once_the_gates_calls_are_done(same: bool, after: str) -> None:
    backend = FakeBackend(reply=lambda spec: "same" if same or spec.role != "gate" else by_seed(spec))
    plan = make_plan(catalogue_with(layers=1, gate={"model": "gamma", "samples": 2}), "moa")
    stream = gated(backend, samples=2).events(
        plan, RunInput.plain(QUESTION), RunContext(RetryBudget(0)), RunOptions(stream=True)
    )
    events: list[Event] = [event async for event in stream]

    kinds = [type(e).__name__ for e in events]
    decided = kinds.index("GateDecided")
    assert kinds[1:decided] == ["CallStarted", "CallStarted", "CallFinished", "CallFinished"]
    assert kinds[decided + 1] == after and kinds.count("GateDecided") == 1
    decision = events[decided]
    assert isinstance(decision, GateDecided) and decision.report.passed is same
    assert isinstance(events[-1], RunFinished) and events[-1].result.gate == decision.report
