"""POST /v1/embeddings: forwarded to a model alias's provider, with its usage and cost recorded."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from moa_gateway.api.deps import runtime_of
from moa_gateway.api.record import record_of
from moa_gateway.api.streaming import json_body
from moa_gateway.wire.requests import EmbeddingsRequest, parse_embeddings_request

router = APIRouter()
_SCHEMA = json_body(EmbeddingsRequest)


@router.post("/v1/embeddings", openapi_extra=_SCHEMA)
async def embeddings(request: Request) -> Response:
    """Create embeddings with a model alias (a pipeline id is a 400)."""
    runtime, record = runtime_of(request), record_of(request.scope)
    parsed = parse_embeddings_request(await request.body())
    record.model = runtime.embeddings.model_of(parsed)  # the label of this request's metrics
    payload, call = await runtime.embeddings.embed(parsed)
    payload["model"] = parsed.model  # the alias the client named, as chat completions answer
    if isinstance(usage := payload.get("usage"), dict):  # the provider's, with our cost as OpenRouter's
        usage["cost"] = round(call.cost_usd, 10)
    return Response(
        orjson.dumps(payload),
        media_type="application/json",
        headers={"x-moa-cost-usd": f"{round(call.cost_usd, 10):.10f}"},
    )
