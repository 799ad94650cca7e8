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
    """The config is loaded and the upstream client is open."""
    client: httpx.AsyncClient = request.state.client
    ready = not client.is_closed
    config = request.state.config
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "pipelines": len(config.pipelines),
            "models": len(config.models),
        },
        status_code=200 if ready else 503,
    )
