"""The hot routes (the POSTs under /v1/ that take nothing but the request: chat completions, completions,
responses, embeddings) called directly, past FastAPI's per-request machinery they do not use: Starlette's
exception middleware, FastAPI's exit stacks, the router's matching and the dependency solver. Those cost
~5% of a MoA request's instructions and ~12% of a passthrough's; every other request still goes the
FastAPI way, and the routes stay registered there, so the OpenAPI schema documents them as before."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from moa_gateway.api.middleware.guarded import guarded

Endpoint = Callable[[Request], Awaitable[Response]]


def hot_endpoints(routers: list[APIRouter]) -> dict[str, Endpoint]:
    """The guarded POST routes whose endpoint is `async def f(request: Request)` with no dependency, by
    path: FastAPI would do nothing for them but call the function with the request. `routers` are
    included in the app as they are (no prefix, no dependencies)."""
    found: dict[str, Endpoint] = {}
    for route in (route for router in routers for route in router.routes):
        if not isinstance(route, APIRoute) or route.methods != {"POST"} or "{" in route.path:
            continue
        params = list(inspect.signature(route.endpoint).parameters.values())
        direct = (
            inspect.iscoroutinefunction(route.endpoint)
            and not route.dependant.dependencies
            and not route.dependencies
            and len(params) == 1
            and route.dependant.request_param_name == params[0].name
        )
        if direct and guarded({"type": "http", "method": "POST", "path": route.path}):
            found.setdefault(route.path, route.endpoint)
    return found


class HotRoutesMiddleware:
    """Innermost: a POST to a hot route calls its endpoint and sends its response; an exception the app
    has a handler for (a Failure, ...) becomes that handler's response, as FastAPI would send it."""

    def __init__(
        self, app: ASGIApp, routers: list[APIRouter], handlers: Mapping[Any, Callable[..., Any]]
    ) -> None:
        self.app = app
        self.endpoints = hot_endpoints(routers)
        self.handlers = handlers  # the app's own dict: handlers installed after this still count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoints.get(scope["path"]) if scope.get("method") == "POST" else None
        if endpoint is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = next((self.handlers[c] for c in type(exc).__mro__ if c in self.handlers), None)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)
