"""Liveness and readiness probes."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The config is loaded, the upstream client is open, and the process is not shutting down."""
    client: httpx.AsyncClient = request.state.client
    draining = request.state.lifecycle.draining
    ready = not client.is_closed and not draining
    config = request.state.config
    circuits = request.state.backend.circuit_states()
    return JSONResponse(
        {
            "status": "draining" if draining else "ready" if ready else "not ready",
            "pipelines": len(config.pipelines),
            "models": len(config.models),
            "open_circuits": sorted(alias for alias, state in circuits.items() if state != "closed"),
        },
        status_code=200 if ready else 503,
    )
