"""POST /v1/chat/completions: a run's result as JSON, or its events framed as server-sent events."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from moa_gateway.api.deps import runtime_of
from moa_gateway.api.record import RequestRecord, record_of
from moa_gateway.api.streaming import ClientEvent, committed, event_stream, json_body
from moa_gateway.core.events import Event, FinalDelta, RunFailed, RunFinished
from moa_gateway.core.failures import Failure
from moa_gateway.service.chat import ChatRun
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.wire import live, sse
from moa_gateway.wire.chat import (
    Completion,
    chunk_body,
    coalesced,
    completion_body,
    cost_header,
    delta_body,
    usage_chunk_body,
)
from moa_gateway.wire.errors import error_body, failure_body, failure_status
from moa_gateway.wire.requests import ChatCompletionRequest, parse_chat_request

logger = logging.getLogger(__name__)
router = APIRouter()

CHAT_PATH = "/v1/chat/completions"
_SCHEMA = json_body(ChatCompletionRequest)


@router.post(CHAT_PATH, openapi_extra=_SCHEMA)
async def chat_completions(request: Request) -> Response:
    """Create a chat completion; a pipeline id runs Mixture-of-Agents."""
    runtime, record = runtime_of(request), record_of(request.scope)
    service = runtime.chat
    run = await service.prepare(
        parse_chat_request(await request.body()), record.caller, record.after_response
    )
    record.model, record.stream = run.plan.model_id, run.stream
    completion = Completion(model=run.plan.model_id)
    if not run.stream:
        result = await service.complete(run)
        record.result = result
        return Response(
            orjson.dumps(completion_body(completion, result, run.include_proposals)),
            media_type="application/json",
            headers={"x-moa-cost-usd": cost_header(result)},
        )
    events = service.events(run, proposer_deltas=run.stream_events)
    clock = sse.SendClock()
    batches = sse.with_keepalive(events, runtime.settings.sse_keepalive_s, clock)
    if run.stream_events:
        batches = live.in_order(batches)
    # A client of live events also gets the inner events (layers, calls) that came before the commit.
    commit_on = live.COMMITTING if run.stream_events else ClientEvent
    first, batches = await committed(batches, commit_on=commit_on, keep_inner=run.stream_events)
    return event_stream(_sse_frames(completion, run, record, runtime.metrics, first, batches), clock)


async def _sse_frames(
    completion: Completion,
    run: ChatRun,
    record: RequestRecord,
    metrics: Metrics,
    first: list[Event] | sse.KeepAlive,
    batches: AsyncGenerator[list[Event] | sse.KeepAlive, None],
) -> AsyncIterator[bytes]:
    usage = run.include_usage
    first_token_seen = False
    for index in range(run.choices):
        yield sse.event(chunk_body(completion, {"role": "assistant", "content": ""}, None, usage, index))
    try:
        batch = first
        while True:
            if not isinstance(batch, list):
                yield sse.KEEPALIVE_COMMENT
            else:
                if run.stream_events and (moa_events := live.event_bodies(batch)):
                    yield sse.event(live.events_chunk_body(completion, moa_events, usage))
                # the deltas that arrived together go out in as few chunks as keep their meaning
                for delta in coalesced([e.delta for e in batch if isinstance(e, FinalDelta)]):
                    if not first_token_seen:
                        first_token_seen = True
                        elapsed = time.perf_counter() - record.started
                        metrics.response_ttft.labels(record.model).observe(elapsed)
                    body = delta_body(delta)
                    yield sse.event(chunk_body(completion, body, None, usage, delta.index, delta.logprobs))
                for event in batch:
                    if isinstance(event, RunFailed):
                        raise event.failure
                    if isinstance(event, RunFinished):
                        record.result = event.result
                        for index, choice in enumerate(event.result.answer.choices()):
                            yield sse.event(chunk_body(completion, {}, choice.finish_reason, usage, index))
                        if usage:
                            yield sse.event(usage_chunk_body(completion, event.result, run.include_proposals))
            try:
                batch = await anext(batches)
            except StopAsyncIteration:
                break
    except Failure as exc:  # after the first byte, errors travel in-band
        logger.warning("stream %s failed after start: %s", completion.id, exc.message)
        record.status = failure_status(exc)
        yield sse.event(failure_body(exc))
    except Exception:
        logger.exception("stream %s failed unexpectedly", completion.id)
        record.status = 500
        yield sse.event(error_body("The gateway failed unexpectedly", "server_error"))
    yield sse.DONE
