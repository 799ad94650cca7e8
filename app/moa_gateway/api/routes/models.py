"""GET /v1/models: every pipeline and model alias, in OpenAI's list shape with the metadata clients read
(context window, output cap, prices; a pipeline's layers and aggregator)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from moa_gateway.api.deps import RuntimeDep
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import quoted
from moa_gateway.wire.models import alias_body, model_bodies, pipeline_body

router = APIRouter()


@router.get("/v1/models")
async def list_models(runtime: RuntimeDep) -> dict[str, Any]:
    """List pipelines (MoA) and single models."""
    return {"object": "list", "data": model_bodies(runtime.catalogue, runtime.started_at)}


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(model_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """Describe one pipeline or model."""
    catalogue = runtime.catalogue
    if model_id in catalogue.pipelines:
        return pipeline_body(catalogue, model_id, runtime.started_at)
    if model_id in catalogue.models:
        return alias_body(catalogue.models[model_id], runtime.started_at)
    raise Failure(FailureKind.MODEL_NOT_FOUND, f"The model {quoted(model_id)} does not exist", param="model")
