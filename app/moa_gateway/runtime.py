"""The composition root: settings and config in, an upstream backend, a MoA runner and the chat
service out, with telemetry wired in. Shared by the HTTP app and anything else that runs pipelines."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from moa_gateway.config import GatewayConfig
from moa_gateway.config.topology import catalogue_of
from moa_gateway.core.plan import Catalogue, OverrideLimits
from moa_gateway.core.ports import CallObserver
from moa_gateway.core.runner import Runner
from moa_gateway.core.types import Role
from moa_gateway.eval.gate_audit import GateAuditor, gate_auditor
from moa_gateway.eval.shadow import ShadowEvaluator, shadow_evaluator
from moa_gateway.service.cache import CachePolicy, ResponseCache, cache_store
from moa_gateway.service.chat import AfterPrepare, AfterResponse, ChatLimits, ChatRun, ChatService
from moa_gateway.service.embeddings import EmbeddingsService
from moa_gateway.service.response_store import ResponseStore, StoreLimits, response_store
from moa_gateway.service.responses import ResponsesService
from moa_gateway.service.roles import RoleTagged
from moa_gateway.service.schema_check.checker import SchemaChecks
from moa_gateway.settings import Settings
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.telemetry.observer import TelemetryObserver, gen_ai_targets
from moa_gateway.upstream.backend import UpstreamBackend
from moa_gateway.upstream.body import UpstreamLimits
from moa_gateway.upstream.client import UpstreamClient, upstream_client
from moa_gateway.upstream.pool import ConnectionPool, pool_size
from moa_gateway.upstream.providers.kinds import connection_caps, endpoints_of
from moa_gateway.wire.requests import ChatCompletionRequest

if TYPE_CHECKING:
    from moa_gateway.telemetry.tracing import Tracing

logger = logging.getLogger(__name__)


@dataclass
class Lifecycle:
    """Set `draining` when shutdown begins: new requests get 503 so a load balancer moves on."""

    draining: bool = False
    chat_in_flight: int = (
        0  # chat requests being served (app/moa_gateway/api/middleware/after_response.py counts)
    )


@dataclass
class Runtime:
    settings: Settings
    config: GatewayConfig
    metrics: Metrics
    client: UpstreamClient
    backend: UpstreamBackend
    chat: ChatService
    embeddings: EmbeddingsService
    lifecycle: Lifecycle
    started_at: int = field(default_factory=lambda: int(time.time()))
    chat_as: Callable[[Role], ChatService] = field(kw_only=True)  # one whose calls count under that role
    responses: ResponsesService = field(kw_only=True)  # /v1/responses: chat runs and the response store
    catalogue: Catalogue = field(kw_only=True)  # the pipelines and models a request may name (/v1/models)
    shadow: ShadowEvaluator | None = None  # pipelines' shadow evaluation of live traffic, if configured
    audits: GateAuditor | None = None  # audits of pipelines' gate passes, if any gate has an audit_rate


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    config: GatewayConfig,
    metrics: Metrics,
    lifecycle: Lifecycle | None = None,
    *,
    tracing: Tracing | None = None,
) -> AsyncIterator[Runtime]:
    """Everything a request needs, for as long as the context is open (the upstream client with it)."""
    pool = _connection_pool(settings, config, metrics)
    async with aclosing(upstream_client(settings, pool.size.total)) as client:
        observer = _call_observer(config, metrics, tracing)
        backend = UpstreamBackend(config, client, observer, UpstreamLimits.from_settings(settings), pool)
        catalogue = catalogue_of(config)
        limits = ChatLimits(
            settings.max_messages,
            OverrideLimits(settings.max_layers, settings.max_proposers),
            settings.retry_budget,
            settings.tool_result_chars,
            settings.max_tools,
        )
        lifecycle = lifecycle or Lifecycle()
        schema_checks = SchemaChecks(settings.schema_check_processes, settings.schema_check_timeout_s)

        def chat_as(role: Role) -> ChatService:
            return ChatService(Runner(RoleTagged(backend, role), catalogue), catalogue, limits, schema_checks)

        busy_at = max(1, settings.max_concurrent_requests * 3 // 4)  # shadow work is shed from here on

        def shadow_refusal() -> str | None:
            if lifecycle.draining:
                return "shutdown"
            return "load" if lifecycle.chat_in_flight >= busy_at else None

        shadow = shadow_evaluator(config, chat_as, metrics, shadow_refusal)
        audits = gate_auditor(config, chat_as, metrics, shadow_refusal)  # shed like shadow work
        cache = _response_cache(settings, config, metrics)
        chat = ChatService(
            Runner(backend, catalogue),
            catalogue,
            limits,
            schema_checks,
            after_prepare=_offers([hook.offer for hook in (audits, shadow) if hook is not None]),
            cache=cache,
        )
        embeddings = EmbeddingsService(backend, catalogue, settings.retry_budget)
        store = _response_store(settings)
        try:
            yield Runtime(
                settings,
                config,
                metrics,
                client,
                backend,
                chat,
                embeddings,
                lifecycle,
                chat_as=chat_as,
                shadow=shadow,
                audits=audits,
                responses=ResponsesService(chat, store, settings.hosted_tools),
                catalogue=catalogue,
            )
        finally:
            schema_checks.close()
            await store.close()
            await cache.close()
            for background in (shadow, audits):  # before the upstream client closes under them
                if background is not None:
                    await background.close()


def _offers(hooks: list[AfterPrepare]) -> AfterPrepare | None:
    """Each hook told of a prepared run in turn, each given the run the one before returned."""
    if not hooks:
        return None

    def offer(request: ChatCompletionRequest, run: ChatRun, after_response: AfterResponse) -> ChatRun:
        for hook in hooks:
            run = hook(request, run, after_response)
        return run

    return offer


def _response_cache(settings: Settings, config: GatewayConfig, metrics: Metrics) -> ResponseCache:
    """The response cache (MOA_CACHE) of the pipelines and models that configure one."""
    cache = ResponseCache(
        cache_store(settings.cache.get_secret_value(), settings.cache_max_bytes, metrics),
        cache_policy(config),
        metrics,
    )
    logger.info("response cache: %s", cache.describe())
    return cache


def cache_policy(config: GatewayConfig) -> CachePolicy:
    """The ids whose requests are cached, with their TTLs, and the config's fingerprint: every pipeline
    and model as configured (what a request may name, in `model` or `moa.layers`), so an answer made
    under another config is never served. Their `cache` and `shadow` settings change no answer."""
    ttl_s = {pid: p.cache.ttl_s for pid, p in config.pipelines.items() if p.cache is not None}
    ttl_s |= {alias: m.cache.ttl_s for alias, m in config.models.items() if m.cache is not None}
    answering = {
        "models": {alias: m.model_dump(mode="json", exclude={"cache"}) for alias, m in config.models.items()},
        "pipelines": {
            pid: p.model_dump(mode="json", exclude={"cache", "shadow"}) for pid, p in config.pipelines.items()
        },
    }
    digest = hashlib.sha256(orjson.dumps(answering, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return CachePolicy(ttl_s, digest[:32])


def _connection_pool(settings: Settings, config: GatewayConfig, metrics: Metrics) -> ConnectionPool:
    """The upstream connections: sized for the requests and proposers allowed in flight, within the
    configured total and each provider's own cap."""
    size = pool_size(
        config,
        max_concurrent_requests=settings.max_concurrent_requests,
        max_proposers=settings.max_proposers,
        total=settings.upstream_max_connections,
        caps=connection_caps(config),
    )
    return ConnectionPool(size, metrics)


def _call_observer(config: GatewayConfig, metrics: Metrics, tracing: Tracing | None) -> CallObserver:
    """What sees every upstream call: the metrics, and a span per call when tracing is on."""
    endpoints = endpoints_of(config)
    observer: CallObserver = TelemetryObserver(
        metrics,
        {alias: m.provider for alias, m in config.models.items()},
        gen_ai_targets(config, endpoints),
    )
    if tracing is not None:  # imported only when on: OpenTelemetry is an optional extra
        from moa_gateway.telemetry.trace_observer import TracingObserver, call_targets

        observer = TracingObserver(observer, tracing, call_targets(config, endpoints))
    return observer


def _response_store(settings: Settings) -> ResponseStore:
    """Where /v1/responses keeps stored responses (MOA_RESPONSES_STORE), within its limits."""
    limits = StoreLimits(
        settings.responses_store_max_entries,
        settings.responses_store_max_bytes,
        settings.responses_store_ttl_s,
    )
    store = response_store(settings.responses_store.get_secret_value(), limits)
    logger.info("responses store: %s", store.describe())  # who can continue a stored response
    return store
