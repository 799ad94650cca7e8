"""POST /v1/completions (legacy): the prompt runs as a chat completion; the answer comes back as
`text_completion` JSON, or chunks over server-sent events ending in `data: [DONE]`."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from moa_gateway.api.deps import runtime_of
from moa_gateway.api.record import RequestRecord, record_of
from moa_gateway.api.streaming import Batches, committed, event_stream, json_body
from moa_gateway.core.events import Event, FinalDelta, RunFailed, RunFinished
from moa_gateway.core.failures import Failure
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.wire import sse
from moa_gateway.wire.chat import Completion, coalesced, cost_header
from moa_gateway.wire.completions import (
    CompletionRequest,
    chat_request,
    check_echo,
    chunk_body,
    completion_body,
    delta_chunk,
    new_completion,
    parse_completion_request,
    usage_chunk_body,
)
from moa_gateway.wire.errors import error_body, failure_body, failure_status

logger = logging.getLogger(__name__)
router = APIRouter()

COMPLETIONS_PATH = "/v1/completions"
_SCHEMA = json_body(CompletionRequest)


@router.post(COMPLETIONS_PATH, openapi_extra=_SCHEMA)
async def completions(request: Request) -> Response:
    """Create a completion (legacy); a pipeline id runs Mixture-of-Agents."""
    runtime, record = runtime_of(request), record_of(request.scope)
    parsed = parse_completion_request(await request.body())
    check_echo(parsed, runtime.settings.max_body_bytes)
    run = await runtime.chat.prepare(chat_request(parsed), record.caller, record.after_response)
    record.model, record.stream = run.plan.model_id, run.stream
    completion = new_completion(run.plan.model_id)
    if not run.stream:
        result = await runtime.chat.complete(run)
        record.result = result
        return Response(
            orjson.dumps(completion_body(completion, result, parsed)),
            media_type="application/json",
            headers={"x-moa-cost-usd": cost_header(result)},
        )
    clock = sse.SendClock()
    batches = sse.with_keepalive(runtime.chat.events(run), runtime.settings.sse_keepalive_s, clock)
    first, batches = await committed(batches)
    frames = _sse_frames(completion, parsed, run.choices, record, runtime.metrics, first, batches)
    return event_stream(frames, clock)


async def _sse_frames(
    completion: Completion,
    request: CompletionRequest,
    choices: int,
    record: RequestRecord,
    metrics: Metrics,
    first: list[Event] | sse.KeepAlive,
    batches: Batches,
) -> AsyncIterator[bytes]:
    offsets = [0] * choices  # text sent so far per choice, for legacy logprobs' text_offset
    if request.echo:
        for index in range(choices):
            offsets[index] = len(request.prompt_text)
            yield sse.event(chunk_body(completion, request.prompt_text, index, None))
    first_token_seen = False
    try:
        batch = first
        while True:
            if not isinstance(batch, list):
                yield sse.KEEPALIVE_COMMENT
            else:
                for delta in coalesced([e.delta for e in batch if isinstance(e, FinalDelta)]):
                    body = delta_chunk(
                        completion, delta, offsets[delta.index] if delta.index < choices else 0
                    )
                    if body is None:
                        continue
                    if not first_token_seen:
                        first_token_seen = True
                        metrics.response_ttft.labels(record.model).observe(
                            time.perf_counter() - record.started
                        )
                    if delta.index < choices:
                        offsets[delta.index] += len(delta.text)
                    yield sse.event(body)
                for event in batch:
                    if isinstance(event, RunFailed):
                        raise event.failure
                    if isinstance(event, RunFinished):
                        record.result = event.result
                        for index, choice in enumerate(event.result.answer.choices()):
                            yield sse.event(chunk_body(completion, "", index, choice.finish_reason))
                        if request.stream_options is not None and request.stream_options.include_usage:
                            yield sse.event(
                                usage_chunk_body(completion, event.result, request.moa.include_proposals)
                            )
            try:
                batch = await anext(batches)
            except StopAsyncIteration:
                break
    except Failure as exc:  # after the first byte, errors travel in-band
        logger.warning("completion stream %s failed after start: %s", completion.id, exc.message)
        record.status = failure_status(exc)
        yield sse.event(failure_body(exc))
    except Exception:
        logger.exception("completion stream %s failed unexpectedly", completion.id)
        record.status = 500
        yield sse.event(error_body("The gateway failed unexpectedly", "server_error"))
    yield sse.DONE
