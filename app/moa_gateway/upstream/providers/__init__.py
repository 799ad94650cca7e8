"""Provider types, keyed by the config's `type`: how a call reaches an upstream."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from moa_gateway.config import GatewayConfig, OpenAIProvider, SimulatedProvider
from moa_gateway.upstream.body import UpstreamLimits
from moa_gateway.upstream.client import UpstreamClient
from moa_gateway.upstream.pool import ConnectionPool
from moa_gateway.upstream.providers.openai_http import HttpTransport
from moa_gateway.upstream.providers.simulated import SimulatedTransport
from moa_gateway.upstream.secrets import gateway_secrets
from moa_gateway.upstream.transport import Transport


@dataclass(frozen=True)
class Shared:
    """What every provider's transport may use: the one client, its pool's accounting, the limits."""

    client: UpstreamClient
    secrets: list[str]
    limits: UpstreamLimits | None
    pool: ConnectionPool | None


ProviderFactory = Callable[[str, object, Shared], Transport]


def _openai(name: str, provider: object, shared: Shared) -> Transport:
    assert isinstance(provider, OpenAIProvider)
    return HttpTransport(shared.client, provider, shared.secrets, shared.limits, pool=shared.pool, name=name)


def _simulated(name: str, provider: object, shared: Shared) -> Transport:
    assert isinstance(provider, SimulatedProvider)  # in-process: no connections to count
    return SimulatedTransport(provider)


REGISTRY: dict[str, ProviderFactory] = {"openai": _openai, "simulated": _simulated}


def build_transports(
    config: GatewayConfig,
    client: UpstreamClient,
    limits: UpstreamLimits | None,
    pool: ConnectionPool | None = None,
) -> dict[str, Transport]:
    """One transport per configured provider, by name."""
    shared = Shared(client, gateway_secrets(config), limits, pool)
    return {name: REGISTRY[p.type](name, p, shared) for name, p in config.providers.items()}
