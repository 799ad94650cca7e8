"""Typed access to the runtime the lifespan opened, for routes (`RuntimeDep`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from moa_gateway.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    """The runtime, typed; the chat route calls this directly, as a dependency costs time per request."""
    runtime = request.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


async def _runtime(request: Request) -> Runtime:
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
