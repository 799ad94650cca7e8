"""Provider types, keyed by the config's `type`: how a call reaches an upstream."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from app.config import GatewayConfig, OpenAIProvider, SimulatedProvider
from app.upstream.body import UpstreamLimits
from app.upstream.providers.openai_http import HttpTransport
from app.upstream.providers.simulated import SimulatedTransport
from app.upstream.transport import Transport

ProviderFactory = Callable[[object, httpx.AsyncClient, list[str], UpstreamLimits | None], Transport]


def _openai(
    provider: object, client: httpx.AsyncClient, secrets: list[str], limits: UpstreamLimits | None
) -> Transport:
    assert isinstance(provider, OpenAIProvider)
    return HttpTransport(client, provider, secrets, limits)


def _simulated(
    provider: object, client: httpx.AsyncClient, secrets: list[str], limits: UpstreamLimits | None
) -> Transport:
    assert isinstance(provider, SimulatedProvider)
    return SimulatedTransport(provider)


REGISTRY: dict[str, ProviderFactory] = {"openai": _openai, "simulated": _simulated}


def build_transports(
    config: GatewayConfig, client: httpx.AsyncClient, limits: UpstreamLimits | None
) -> dict[str, Transport]:
    """One transport per configured provider, by name."""
    secrets = config.secrets()
    return {name: REGISTRY[p.type](p, client, secrets, limits) for name, p in config.providers.items()}
