"""POST /v1/chat/completions: parse, run the engine, answer with JSON or SSE."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from app.api import sse
from app.api.errors import validation_error
from app.api.responses import (
    Completion,
    chunk_body,
    completion_body,
    cost_header,
    usage_chunk_body,
)
from app.config import GatewayConfig
from app.errors import GatewayError, InvalidRequestError, error_body, quoted
from app.moa.engine import MoaEngine
from app.moa.types import MoaResult, TopologyOverride
from app.protocol import ChatCompletionRequest
from app.settings import Settings
from app.upstream.retry import RetryBudget, retry_budget_var

logger = logging.getLogger(__name__)
router = APIRouter()

_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ChatCompletionRequest.model_json_schema()}},
    }
}


def parse_chat_request(raw: bytes) -> ChatCompletionRequest:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequestError("The request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object")
    try:  # what parses may still not encode again (orjson writes 255 levels, reads 1024)
        orjson.dumps(data)
    except orjson.JSONEncodeError as exc:
        raise InvalidRequestError(f"The request body cannot be forwarded upstream ({exc})") from None
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def check_limits(body: ChatCompletionRequest, config: GatewayConfig, settings: Settings) -> None:
    """Request-size limits, and a request's own topology: known aliases, within the caps."""
    if len(body.messages) > settings.max_messages:
        raise InvalidRequestError(f"messages: at most {settings.max_messages} messages", param="messages")
    layers = body.moa.layers
    if layers is not None:
        if not 1 <= len(layers) <= settings.max_layers:
            raise InvalidRequestError(f"moa.layers: 1 to {settings.max_layers} layers", param="moa.layers")
        for i, layer in enumerate(layers):
            if not 1 <= len(layer) <= settings.max_proposers:
                message = f"moa.layers[{i}]: 1 to {settings.max_proposers} proposers"
                raise InvalidRequestError(message, param=f"moa.layers[{i}]")
            for j, alias in enumerate(layer):
                if alias not in config.models:
                    raise InvalidRequestError(
                        f"moa.layers[{i}][{j}]: unknown model {quoted(alias)}", param=f"moa.layers[{i}][{j}]"
                    )
    aggregator = body.moa.aggregator
    if aggregator is not None and aggregator not in config.models:
        raise InvalidRequestError(
            f"moa.aggregator: unknown model {quoted(aggregator)}", param="moa.aggregator"
        )


@router.post("/v1/chat/completions", openapi_extra=_SCHEMA)
async def chat_completions(request: Request) -> Response:
    """Create a chat completion; a pipeline id runs Mixture-of-Agents."""
    body = parse_chat_request(await request.body())
    settings: Settings = request.state.settings
    check_limits(body, request.state.config, settings)
    retry_budget_var.set(RetryBudget(settings.retry_budget))
    engine: MoaEngine = request.state.engine
    override = None
    if body.moa.layers is not None or body.moa.aggregator is not None:
        override = TopologyOverride(body.moa.layers, body.moa.aggregator)
    plan = engine.plan(body.model, override)
    request.state.moa_model = plan.model_id  # a config name from here on: safe as a metric label
    request.state.moa_stream = bool(body.stream)
    completion = Completion(model=body.model)
    if not body.stream:
        result = await engine.run(plan, body.message_dicts(), body.sampling_params())
        request.state.moa_result = result
        payload = completion_body(completion, result, body.moa.include_proposals)
        return Response(
            orjson.dumps(payload),
            media_type="application/json",
            headers={"x-moa-cost-usd": cost_header(result)},
        )

    events = sse.with_keepalive(
        engine.stream(plan, body.message_dicts(), body.sampling_params()),
        request.state.settings.sse_keepalive_s,
    )
    # Commit to a 200 only once something has happened: a fast failure still gets its real status.
    first = await anext(events)
    return StreamingResponse(
        _sse_frames(request, completion, body, first, events),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _sse_frames(
    request: Request,
    completion: Completion,
    body: ChatCompletionRequest,
    first: Any,
    events: AsyncIterator[Any],
) -> AsyncIterator[bytes]:
    include_usage = body.include_usage
    state = request.state
    first_token_seen = False
    yield sse.event(chunk_body(completion, {"role": "assistant", "content": ""}, None, include_usage))
    try:
        batch = first
        while True:
            if batch is sse.KEEPALIVE:
                yield sse.KEEPALIVE_COMMENT
            else:
                text = "".join(item for item in batch if isinstance(item, str))
                if text:  # the deltas that arrived together go out as one chunk
                    if not first_token_seen:
                        first_token_seen = True
                        elapsed = time.perf_counter() - state.moa_started
                        state.metrics.response_ttft.labels(state.moa_model).observe(elapsed)
                    yield sse.event(chunk_body(completion, {"content": text}, None, include_usage))
                for result in (item for item in batch if isinstance(item, MoaResult)):
                    state.moa_result = result
                    yield sse.event(chunk_body(completion, {}, result.finish_reason, include_usage))
                    if include_usage:
                        yield sse.event(usage_chunk_body(completion, result, body.moa.include_proposals))
            try:
                batch = await anext(events)
            except StopAsyncIteration:
                break
    except GatewayError as exc:  # after the first byte, errors travel in-band
        logger.warning("stream %s failed after start: %s", completion.id, exc.message)
        state.moa_status = exc.status_code
        yield sse.event(exc.to_body())
    except Exception:
        logger.exception("stream %s failed unexpectedly", completion.id)
        state.moa_status = 500
        yield sse.event(error_body("The gateway failed unexpectedly", "server_error"))
    yield sse.DONE
