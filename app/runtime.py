"""The composition root: settings and config in, an upstream backend, a MoA runner and the chat
service out, with telemetry wired in. Shared by the HTTP app and anything else that runs pipelines."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from app.config import GatewayConfig
from app.config.topology import catalogue_of
from app.core.plan import OverrideLimits
from app.core.runner import Runner
from app.service.chat import ChatLimits, ChatService
from app.settings import Settings
from app.telemetry.metrics import Metrics
from app.telemetry.observer import TelemetryObserver
from app.upstream.backend import UpstreamBackend
from app.upstream.body import UpstreamLimits
from app.upstream.client import upstream_client


@dataclass
class Lifecycle:
    """Set `draining` when shutdown begins: new requests get 503 so a load balancer moves on."""

    draining: bool = False


@dataclass
class Runtime:
    settings: Settings
    config: GatewayConfig
    metrics: Metrics
    client: httpx.AsyncClient
    backend: UpstreamBackend
    chat: ChatService
    lifecycle: Lifecycle
    started_at: int = field(default_factory=lambda: int(time.time()))


@asynccontextmanager
async def open_runtime(
    settings: Settings, config: GatewayConfig, metrics: Metrics, lifecycle: Lifecycle | None = None
) -> AsyncIterator[Runtime]:
    """Everything a request needs, for as long as the context is open (the upstream client with it)."""
    async with upstream_client(settings) as client:
        observer = TelemetryObserver(metrics, {alias: m.provider for alias, m in config.models.items()})
        backend = UpstreamBackend(config, client, observer, UpstreamLimits.from_settings(settings))
        catalogue = catalogue_of(config)
        limits = ChatLimits(
            settings.max_messages,
            OverrideLimits(settings.max_layers, settings.max_proposers),
            settings.retry_budget,
        )
        chat = ChatService(Runner(backend, catalogue), catalogue, limits)
        yield Runtime(settings, config, metrics, client, backend, chat, lifecycle or Lifecycle())
