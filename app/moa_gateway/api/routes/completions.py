"""POST /v1/completions (legacy): the prompt runs as a chat completion; the answer comes back as
`text_completion` JSON, or chunks over server-sent events ending in `data: [DONE]`."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from moa_gateway.api.deps import runtime_of
from moa_gateway.api.record import record_of
from moa_gateway.api.stream_driver import stream_answer
from moa_gateway.api.streaming import json_body
from moa_gateway.wire.chat import cost_header
from moa_gateway.wire.completions import (
    CompletionRequest,
    chat_request,
    check_echo,
    completion_body,
    new_completion,
    parse_completion_request,
)
from moa_gateway.wire.completions_stream import CompletionsEncoder

router = APIRouter()

COMPLETIONS_PATH = "/v1/completions"
_SCHEMA = json_body(CompletionRequest)


@router.post(COMPLETIONS_PATH, openapi_extra=_SCHEMA)
async def completions(request: Request) -> Response:
    """Create a completion (legacy); a pipeline id runs Mixture-of-Agents."""
    runtime, record = runtime_of(request), record_of(request.scope)
    parsed = parse_completion_request(await request.body())
    check_echo(parsed, runtime.settings.max_body_bytes)
    run = await runtime.chat.prepare(chat_request(parsed), record.caller, record.after_response, cache=True)
    record.model, record.stream = run.plan.model_id, run.stream
    completion = new_completion(run.plan.model_id)
    if not run.stream:
        result = await runtime.chat.complete(run)
        record.result = result
        return Response(
            orjson.dumps(completion_body(completion, result, parsed)),
            media_type="application/json",
            headers={"x-moa-cost-usd": cost_header(result), **run.cache.headers},
        )
    encoder = CompletionsEncoder(completion, parsed, run.choices)
    events = runtime.chat.events(run)
    return await stream_answer(runtime, record, events, encoder, headers=run.cache.headers)
