"""GET /v1/models: every pipeline and model alias, in OpenAI's list shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from moa_gateway.api.deps import RuntimeDep
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import Catalogue, quoted

router = APIRouter()


def _entry(model_id: str, kind: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": f"moa-gateway:{kind}"}


def _entries(catalogue: Catalogue, created: int) -> list[dict[str, Any]]:
    """Pipelines, then models, each in the config's order."""
    return [_entry(pid, "pipeline", created) for pid in catalogue.pipelines] + [
        _entry(alias, "model", created) for alias in catalogue.models
    ]


@router.get("/v1/models")
async def list_models(runtime: RuntimeDep) -> dict[str, Any]:
    """List pipelines (MoA) and single models."""
    return {"object": "list", "data": _entries(runtime.catalogue, runtime.started_at)}


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(model_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """Describe one pipeline or model."""
    for entry in _entries(runtime.catalogue, runtime.started_at):
        if entry["id"] == model_id:
            return entry
    raise Failure(FailureKind.MODEL_NOT_FOUND, f"The model {quoted(model_id)} does not exist", param="model")
