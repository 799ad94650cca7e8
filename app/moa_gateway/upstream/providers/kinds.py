"""A provider kind per config `type`: everything the gateway knows of that type in one value (how its
transport is built, its connection cap, what telemetry calls it, the secrets it holds, its stream options).
Nothing outside this registry tests a provider's class: a new type is one kind here and one config model."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from moa_gateway.config import GatewayConfig, OpenAIProvider, SimulatedProvider
from moa_gateway.core.ports import ProviderEndpoint
from moa_gateway.upstream.body import UpstreamLimits
from moa_gateway.upstream.client import UpstreamClient
from moa_gateway.upstream.pool import ConnectionPool
from moa_gateway.upstream.providers.openai_http import HttpTransport
from moa_gateway.upstream.providers.simulated import SimulatedTransport
from moa_gateway.upstream.secrets import every_form_of, userinfo_secrets
from moa_gateway.upstream.transport import Transport

_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|password|credential", re.IGNORECASE)


@dataclass(frozen=True)
class Shared:
    """What every provider's transport may use: the one client, its pool's accounting, the limits."""

    client: UpstreamClient
    secrets: list[str]
    limits: UpstreamLimits | None
    pool: ConnectionPool | None


@dataclass(frozen=True)
class ProviderKind:
    """One config `type`. Each function takes that type's config model (the registry's key picks it)."""

    build: Callable[[str, Any, Shared], Transport]
    endpoint: Callable[[Any], ProviderEndpoint]  # what telemetry calls it, and the server it reaches
    connection_cap: Callable[[Any], int | None] = lambda provider: None  # calls in flight at once
    secrets: Callable[[Any], list[str]] = lambda provider: []  # values never to show
    stream_usage: Callable[[Any], bool] = lambda provider: True  # ask for stream_options.include_usage


def _openai_endpoint(provider: OpenAIProvider) -> ProviderEndpoint:
    url = urlsplit(provider.base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    # Any OpenAI-compatible API is the `openai` flavour; the config's provider name says which one.
    return ProviderEndpoint("openai", url.hostname or "", port)


def _openai_secrets(provider: OpenAIProvider) -> list[str]:
    """Upstream keys, secret-looking header values (and every header value long enough to be one),
    credentials in the base URL."""
    found: list[str] = []
    if provider.api_key is not None:
        found.append(provider.api_key.get_secret_value())
    for name, value in provider.headers.items():
        if _SECRET_HEADER.search(name) or len(value) >= 8:
            found.append(value)
            found.append(value.partition(" ")[2])  # "Bearer xyz": xyz alone as well
    found += userinfo_secrets(provider.base_url)  # sent as `Authorization: Basic ...`
    found += [value for _, value in parse_qsl(urlsplit(provider.base_url).query) if len(value) >= 4]
    return [value for value in found if value]


def _openai(name: str, provider: OpenAIProvider, shared: Shared) -> Transport:
    return HttpTransport(shared.client, provider, shared.secrets, shared.limits, pool=shared.pool, name=name)


def _simulated(name: str, provider: SimulatedProvider, shared: Shared) -> Transport:
    return SimulatedTransport(provider)  # in-process: no connections to count


KINDS: dict[str, ProviderKind] = {
    "openai": ProviderKind(
        build=_openai,
        endpoint=_openai_endpoint,
        connection_cap=lambda provider: provider.max_connections,
        secrets=_openai_secrets,
        stream_usage=lambda provider: provider.stream_include_usage,
    ),
    "simulated": ProviderKind(build=_simulated, endpoint=lambda provider: ProviderEndpoint("moa.simulator")),
}


def kind_of(provider: Any) -> ProviderKind:
    return KINDS[provider.type]


def secrets_of(config: GatewayConfig) -> list[str]:
    """Everything that must never be shown, for redaction: every provider's secrets and the
    environment's proxy credentials, in every form they may be echoed."""
    return every_form_of(
        secret for provider in config.providers.values() for secret in kind_of(provider).secrets(provider)
    )


def connection_caps(config: GatewayConfig) -> dict[str, int]:
    """Each provider's own cap on calls in flight, where it sets one."""
    caps = {name: kind_of(provider).connection_cap(provider) for name, provider in config.providers.items()}
    return {name: cap for name, cap in caps.items() if cap is not None}


def endpoints_of(config: GatewayConfig) -> dict[str, ProviderEndpoint]:
    """What telemetry calls each provider, by config name."""
    return {name: kind_of(provider).endpoint(provider) for name, provider in config.providers.items()}
