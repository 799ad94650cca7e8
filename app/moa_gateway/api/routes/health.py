"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from moa_gateway.api.deps import RuntimeDep

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """The config is loaded, the upstream client is open, and the process is not shutting down."""
    draining = runtime.lifecycle.draining
    ready = not runtime.client.is_closed and not draining
    config = runtime.config
    circuits = runtime.backend.circuit_states()
    return JSONResponse(
        {
            "status": "draining" if draining else "ready" if ready else "not ready",
            "pipelines": len(config.pipelines),
            "models": len(config.models),
            "open_circuits": sorted(alias for alias, state in circuits.items() if state != "closed"),
        },
        status_code=200 if ready else 503,
    )
