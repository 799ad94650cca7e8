"""Calling the upstream backend directly, as the core's runner does."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from moa_gateway.config import GatewayConfig
from moa_gateway.core.ports import RetryBudget, RunContext
from moa_gateway.core.types import Answer, CallSpec, Delta
from moa_gateway.upstream.backend import UpstreamBackend


def providers_of(config: GatewayConfig) -> dict[str, str]:
    return {alias: model.provider for alias, model in config.models.items()}


async def complete(backend: UpstreamBackend, spec: CallSpec) -> Answer:
    """A non-streamed call's answer."""
    async for piece in backend.call(spec, RunContext(RetryBudget(4)), stream=False):
        if isinstance(piece, Answer):
            return piece
    raise AssertionError("the call yielded no answer")


def stream(backend: UpstreamBackend, spec: CallSpec) -> AsyncGenerator[Delta | Answer, None]:
    return backend.call(spec, RunContext(RetryBudget(4)), stream=True)
