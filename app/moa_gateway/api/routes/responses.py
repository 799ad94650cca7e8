"""The Responses API: `POST /v1/responses` (JSON, or the documented event stream), and
`GET`/`DELETE /v1/responses/{id}` of stored responses. The run is a chat completion run."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from moa_gateway.api.deps import RuntimeDep, runtime_of
from moa_gateway.api.record import RequestRecord, record_of
from moa_gateway.api.streaming import Batches, committed, event_stream, json_body
from moa_gateway.core.events import Event, FinalDelta, RunFailed, RunFinished
from moa_gateway.core.failures import Failure
from moa_gateway.service.responses import ResponsesRun, ResponsesService
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.wire import sse
from moa_gateway.wire.chat import coalesced, cost_header
from moa_gateway.wire.errors import error_body, failure_body, failure_status
from moa_gateway.wire.responses import ResponsesRequest, parse_responses_request
from moa_gateway.wire.responses_output import final_status, output_items, response_body
from moa_gateway.wire.responses_stream import ResponseStream, frame_event

logger = logging.getLogger(__name__)
router = APIRouter()

RESPONSES_PATH = "/v1/responses"
_SCHEMA = json_body(ResponsesRequest)


@router.post(RESPONSES_PATH, openapi_extra=_SCHEMA)
async def create_response(request: Request) -> Response:
    """Create a model response (Responses API); a pipeline id runs Mixture-of-Agents."""
    runtime, record = runtime_of(request), record_of(request.scope)
    service = runtime.responses
    parsed = parse_responses_request(await request.body())
    run = await service.prepare(parsed, record.caller, record.after_response)
    record.model, record.stream = run.chat.plan.model_id, run.chat.stream
    if not run.chat.stream:
        result = await service.complete(run)
        record.result = result
        items = output_items(result.answer, run.frame)
        body = response_body(run.frame, final_status(result.answer), items, result)
        await service.save(run, body, items)
        return Response(
            orjson.dumps(body), media_type="application/json", headers={"x-moa-cost-usd": cost_header(result)}
        )
    clock = sse.SendClock()
    first, batches = await committed(
        sse.with_keepalive(service.events(run), runtime.settings.sse_keepalive_s, clock)
    )
    return event_stream(_sse_frames(service, run, record, runtime.metrics, first, batches), clock)


async def _sse_frames(
    service: ResponsesService,
    run: ResponsesRun,
    record: RequestRecord,
    metrics: Metrics,
    first: list[Event] | sse.KeepAlive,
    batches: Batches,
) -> AsyncIterator[bytes]:
    stream = ResponseStream(run.frame)
    for body in stream.start():
        yield frame_event(body)
    first_token_seen = False
    try:
        batch = first
        while True:
            if not isinstance(batch, list):
                yield sse.KEEPALIVE_COMMENT
            else:
                for delta in coalesced([e.delta for e in batch if isinstance(e, FinalDelta)]):
                    if delta.text and not first_token_seen:
                        first_token_seen = True
                        metrics.response_ttft.labels(record.model).observe(
                            time.perf_counter() - record.started
                        )
                    for body in stream.delta(delta):
                        yield frame_event(body)
                for event in batch:
                    if isinstance(event, RunFailed):
                        raise event.failure
                    if isinstance(event, RunFinished):
                        record.result = event.result
                        bodies = stream.finish(event.result)
                        await service.save(run, bodies[-1]["response"], stream.items)
                        for body in bodies:
                            yield frame_event(body)
            try:
                batch = await anext(batches)
            except StopAsyncIteration:
                break
    except Failure as exc:  # after the first byte, the response fails in-band
        logger.warning("response stream %s failed after start: %s", run.frame.id, exc.message)
        record.status = failure_status(exc)
        for body in stream.fail(failure_body(exc)["error"]):
            yield frame_event(body)
    except Exception:
        logger.exception("response stream %s failed unexpectedly", run.frame.id)
        record.status = 500
        for body in stream.fail(error_body("The gateway failed unexpectedly", "server_error")["error"]):
            yield frame_event(body)


@router.get(RESPONSES_PATH + "/{response_id}")
async def retrieve_response(response_id: str, request: Request, runtime: RuntimeDep) -> Response:
    """Retrieve a stored response."""
    body = await runtime.responses.retrieve(record_of(request.scope).caller, response_id)
    return Response(orjson.dumps(body), media_type="application/json")


@router.delete(RESPONSES_PATH + "/{response_id}")
async def delete_response(response_id: str, request: Request, runtime: RuntimeDep) -> Response:
    """Delete a stored response."""
    await runtime.responses.delete(record_of(request.scope).caller, response_id)
    body = {"id": response_id, "object": "response.deleted", "deleted": True}
    return Response(orjson.dumps(body), media_type="application/json")
