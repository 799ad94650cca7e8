"""The HTTP app: settings and config in, a FastAPI app whose lifespan opens the runtime. Composition
only; what a request does lives in the routes, the service and the core."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from moa_gateway.api.errors import install_error_handlers
from moa_gateway.api.middleware.admission import ChatGuardMiddleware
from moa_gateway.api.middleware.after_response import AfterResponseMiddleware
from moa_gateway.api.middleware.auth import AuthMiddleware
from moa_gateway.api.middleware.error_boundary import ErrorBoundaryMiddleware
from moa_gateway.api.middleware.guarded import guarded
from moa_gateway.api.middleware.hot_routes import HotRoutesMiddleware
from moa_gateway.api.middleware.request_id import RequestIdMiddleware
from moa_gateway.api.middleware.request_metrics import ChatMetricsMiddleware
from moa_gateway.api.middleware.tracing import TracingMiddleware
from moa_gateway.api.routes import (
    chat,
    completions,
    docs,
    embeddings,
    health,
    models,
    playground,
    prometheus,
    responses,
)
from moa_gateway.config import GatewayConfig, load_config
from moa_gateway.runtime import Lifecycle, open_runtime
from moa_gateway.settings import Settings
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.telemetry.tracing_setup import open_tracing

if TYPE_CHECKING:
    from moa_gateway.telemetry.tracing import Tracing

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, config: GatewayConfig | None = None, *, tracing: Tracing | None = None
) -> FastAPI:
    """Build the gateway. The config is loaded here, so a bad file fails before anything listens.
    Traces go to `tracing` if given, else where the settings and the OTel environment say, if anywhere."""
    settings = settings or Settings()
    config = config or load_config(settings.config)
    tracing = tracing or open_tracing(settings)
    metrics = Metrics()
    lifecycle = Lifecycle()
    if unpriced := config.unpriced_models():
        logger.warning("models without a price, counted as free: %s", ", ".join(unpriced))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        try:
            async with open_runtime(settings, config, metrics, lifecycle, tracing=tracing) as runtime:
                yield {"runtime": runtime}
        finally:
            if tracing is not None:
                tracing.close()  # the spans still batched go out

    # /docs and /redoc are the gateway's own (api/routes/docs.py): FastAPI's load their assets from a CDN.
    app = FastAPI(title="moa-gateway", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.lifecycle = lifecycle  # the CLI's server marks it draining on SIGTERM
    # Added innermost first; the request id is outermost so every log line carries it.
    # Every POST under /v1/ is guarded (a rule, so a new route cannot be missed): admission (drain, body
    # cap, concurrency cap, cancel on hang-up), request metrics, traces and after-response work.
    modules = (chat, responses, completions, embeddings, models, health, prometheus, playground, docs)
    routers = [module.router for module in modules]
    # Innermost: the hot POST routes are called directly, past FastAPI's per-request machinery.
    app.add_middleware(HotRoutesMiddleware, routers=routers, handlers=app.exception_handlers)
    app.add_middleware(AfterResponseMiddleware, lifecycle=lifecycle, guarded=guarded)
    app.add_middleware(
        ChatGuardMiddleware,
        lifecycle=lifecycle,
        max_concurrent=settings.max_concurrent_requests,
        max_body_bytes=settings.max_body_bytes,
        guarded=guarded,
    )
    if tracing is not None:
        app.add_middleware(TracingMiddleware, tracing=tracing, guarded=guarded)
    app.add_middleware(AuthMiddleware, key_digests=[*settings.api_key_digests(), *config.auth.api_key_sha256])
    app.add_middleware(ChatMetricsMiddleware, metrics=metrics, guarded=guarded)
    app.add_middleware(ErrorBoundaryMiddleware)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    docs.use_component_schemas(app)
    for router in routers:
        app.include_router(router)
    return app
