"""Live run events on the wire (`moa.stream_events`): the run's layers and calls as JSON objects, carried
in `moa_events` on chunks that have no choices, between the answer's usual chunks.

A chunk with `choices: []` is what OpenAI itself sends for usage, so every OpenAI client parses it; a
client that did not ask never gets one. Named SSE events (`event: moa`) would not do: the openai SDK
reads any `data:` frame as a chunk whatever its event name, and gives its caller a chunk without
`choices`; SSE comments would be dropped by every SSE parser, the SDK's included.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from typing import Any, Final

from moa_gateway.core.events import (
    AgreementMeasured,
    CallDelta,
    CallFinished,
    CallStarted,
    Event,
    FinalDelta,
    GateDecided,
    LayerFinished,
    LayerStarted,
    RunFailed,
    RunFinished,
    RunStarted,
)
from moa_gateway.wire.chat import Completion, agreement_body, call_body, gate_body, usage_body
from moa_gateway.wire.errors import failure_body
from moa_gateway.wire.sse import KeepAlive

# With live events asked for, the stream commits to its 200 once a model has said something (or one
# keep-alive interval passed): a request that fails at once still gets its status as a JSON error.
COMMITTING: Final = (CallDelta, FinalDelta, RunFinished, RunFailed)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def event_body(event: Event) -> dict[str, Any] | None:
    """One event as its client sees it; None for the answer's own deltas, which go out as chunks."""
    if isinstance(event, CallDelta):
        return _call_delta_body(event)
    if isinstance(event, CallStarted):
        return {
            "type": "call.started",
            "layer": event.layer,
            "slot": event.slot,
            "role": event.role,
            "model": event.model,
            "at_ms": _ms(event.at_s),
        }
    if isinstance(event, CallFinished):
        return {
            "type": "call.finished",
            "slot": event.slot,
            "at_ms": _ms(event.at_s),
            **call_body(event.record),
        }
    if isinstance(event, LayerStarted):
        return {"type": "layer.started", "layer": event.layer, "models": event.models}
    if isinstance(event, LayerFinished):
        return {
            "type": "layer.finished",
            "layer": event.layer,
            "answered": event.answered,
            "dropped": event.dropped,
        }
    if isinstance(event, AgreementMeasured):
        return {"type": "agreement", **agreement_body(event.report)}
    if isinstance(event, GateDecided):
        return {"type": "gate", **gate_body(event.report)}
    if isinstance(event, RunStarted):
        return {
            "type": "run.started",
            "model": event.model_id,
            "pipeline": event.pipeline,
            "layers": event.layers,
        }
    if isinstance(event, RunFinished):
        return _run_finished_body(event)
    if isinstance(event, RunFailed):
        return {"type": "run.failed", **failure_body(event.failure)}
    return None


def _call_delta_body(event: CallDelta) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "call.delta",
        "layer": event.layer,
        "slot": event.slot,
        "role": event.role,
        "model": event.model,
        "text": event.delta.text,
    }
    if event.delta.reasoning:
        body["reasoning"] = event.delta.reasoning
    return body


def _run_finished_body(event: RunFinished) -> dict[str, Any]:
    result = event.result
    body = {
        "type": "run.finished",
        "answered_by": result.answered_by,
        "cost_usd": round(result.cost_usd, 10),
        "usage": usage_body(result.usage, result.cost_usd),
        "dropped": result.dropped,
    }
    if result.degraded is not None:
        body["degraded"] = result.degraded.value
    return body


def event_bodies(events: Iterable[Event]) -> list[dict[str, Any]]:
    """The events' bodies in order; the deltas of one call that arrived together are joined into one."""
    bodies: list[dict[str, Any]] = []
    joining: dict[tuple[int, int], dict[str, Any]] = {}  # call -> its delta body, since the last other event
    for event in events:
        if isinstance(event, CallDelta):
            key = (event.layer, event.slot)
            if (joined := joining.get(key)) is not None:
                joined["text"] += event.delta.text
                if event.delta.reasoning:
                    joined["reasoning"] = joined.get("reasoning", "") + event.delta.reasoning
                continue
        body = event_body(event)
        if body is None:
            continue
        if isinstance(event, CallDelta):
            joining[event.layer, event.slot] = body
        else:
            joining.clear()
        bodies.append(body)
    return bodies


def events_chunk_body(
    completion: Completion, bodies: list[dict[str, Any]], include_usage: bool
) -> dict[str, Any]:
    """A chunk with no choices that carries live events."""
    chunk: dict[str, Any] = {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
        "choices": [],
    }
    if include_usage:
        chunk["usage"] = None
    # --- moa-gateway extension ---
    chunk["moa_events"] = bodies
    return chunk


async def in_order(
    batches: AsyncIterator[list[Event] | KeepAlive],
) -> AsyncGenerator[list[Event] | KeepAlive, None]:
    """The batches cut where the answer's deltas start or stop, so that a batch's events chunk, written
    before its content, keeps the order of what happened (the aggregator starts, then its text)."""
    try:
        async for batch in batches:
            if not isinstance(batch, list):
                yield batch
                continue
            start = 0
            for index in range(1, len(batch)):
                if isinstance(batch[index], FinalDelta) != isinstance(batch[index - 1], FinalDelta):
                    yield batch[start:index]
                    start = index
            yield batch[start:]
    finally:
        if isinstance(batches, AsyncGenerator):  # closing us closes the source (it owns the run's task)
            await batches.aclose()
