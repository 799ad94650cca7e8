"""POST /v1/chat/completions: a run's result as JSON, or its events framed as server-sent events."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from moa_gateway.api.deps import runtime_of
from moa_gateway.api.record import record_of
from moa_gateway.api.stream_driver import stream_answer
from moa_gateway.api.streaming import json_body
from moa_gateway.wire.chat import Completion, completion_body, cost_header
from moa_gateway.wire.chat_stream import ChatEncoder
from moa_gateway.wire.requests import ChatCompletionRequest, parse_chat_request

router = APIRouter()

CHAT_PATH = "/v1/chat/completions"
_SCHEMA = json_body(ChatCompletionRequest)


@router.post(CHAT_PATH, openapi_extra=_SCHEMA)
async def chat_completions(request: Request) -> Response:
    """Create a chat completion; a pipeline id runs Mixture-of-Agents."""
    runtime, record = runtime_of(request), record_of(request.scope)
    service = runtime.chat
    run = await service.prepare(
        parse_chat_request(await request.body()), record.caller, record.after_response, cache=True
    )
    record.model, record.stream = run.plan.model_id, run.stream
    completion = Completion(model=run.plan.model_id)
    if not run.stream:
        result = await service.complete(run)
        record.result = result
        return Response(
            orjson.dumps(completion_body(completion, result, run.include_proposals)),
            media_type="application/json",
            headers={"x-moa-cost-usd": cost_header(result), **run.cache.headers},
        )
    encoder = ChatEncoder(
        completion,
        choices=run.choices,
        include_usage=run.include_usage,
        include_proposals=run.include_proposals,
        live_events=run.stream_events,
    )
    events = service.events(run, proposer_deltas=run.stream_events)
    return await stream_answer(runtime, record, events, encoder, headers=run.cache.headers)
