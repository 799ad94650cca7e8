"""Provider types, keyed by the config's `type` (kinds.py): how a call reaches an upstream."""

from __future__ import annotations

from moa_gateway.config import GatewayConfig
from moa_gateway.upstream.body import UpstreamLimits
from moa_gateway.upstream.client import UpstreamClient
from moa_gateway.upstream.pool import ConnectionPool
from moa_gateway.upstream.providers.kinds import KINDS, Shared, kind_of, secrets_of
from moa_gateway.upstream.transport import Transport


def build_transports(
    config: GatewayConfig,
    client: UpstreamClient,
    limits: UpstreamLimits | None,
    pool: ConnectionPool | None = None,
) -> dict[str, Transport]:
    """One transport per configured provider, by name."""
    shared = Shared(client, secrets_of(config), limits, pool)
    return {name: kind_of(p).build(name, p, shared) for name, p in config.providers.items()}


__all__ = ["KINDS", "Shared", "build_transports", "kind_of", "secrets_of"]
