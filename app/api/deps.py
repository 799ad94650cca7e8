"""Typed access to the runtime the lifespan opened, for routes (`RuntimeDep`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.runtime import Runtime


async def _runtime(request: Request) -> Runtime:
    runtime = request.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
