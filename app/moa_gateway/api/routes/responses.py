"""The Responses API: `POST /v1/responses` (JSON, or the documented event stream), and
`GET`/`DELETE /v1/responses/{id}` of stored responses. The run is a chat completion run."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from moa_gateway.api.deps import RuntimeDep, runtime_of
from moa_gateway.api.record import record_of
from moa_gateway.api.stream_driver import stream_answer
from moa_gateway.api.streaming import json_body
from moa_gateway.core.types import MoaResult
from moa_gateway.wire.chat import cost_header
from moa_gateway.wire.responses import ResponsesRequest, parse_responses_request
from moa_gateway.wire.responses_encoder import ResponsesEncoder
from moa_gateway.wire.responses_output import final_status, output_items, response_body

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
    encoder = ResponsesEncoder(run.frame)

    async def save(result: MoaResult) -> None:  # stored before the client reads response.completed
        await service.save(run, encoder.response, encoder.items)

    return await stream_answer(runtime, record, service.events(run), encoder, save)


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
