"""Gateway keys: with keys configured, every path but the probes and metrics needs one, and the key that
matched names the caller on the request record (which stored responses it may reach)."""

from __future__ import annotations

import hashlib
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from moa_gateway.api.middleware.responses import send_error
from moa_gateway.api.record import record_of
from moa_gateway.core.caller import Caller

# Probes and metrics carry no secrets, and a prober or scraper holds no key. The index and the
# playground page are static: the page asks for the key and sends it with each API call it makes.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/", "/playground"})


class AuthMiddleware:
    """With gateway keys configured, every path but OPEN_PATHS needs `Authorization: Bearer <key>`: the
    API, and also `/docs`, `/redoc` and `/openapi.json`, which describe it.

    Keys are kept as SHA-256 digests and compared in constant time, against every digest. The caller is
    named by a hash of the matched digest (core/caller.py), so no store ever holds a key or its digest.
    """

    def __init__(self, app: ASGIApp, key_digests: list[str]) -> None:
        self.app = app
        self.digests = [bytes.fromhex(d) for d in key_digests]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.digests or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, key = header.partition(b" ")
        presented = hashlib.sha256(key.strip()).digest()
        matched = False
        for digest in self.digests:  # no early exit: time does not tell which key is close
            matched |= hmac.compare_digest(presented, digest)
        if scheme.lower() != b"bearer" or not matched:
            await send_error(
                send,
                401,
                "Incorrect or missing API key: send `Authorization: Bearer <key>`",
                "invalid_request_error",
                "invalid_api_key",
                {"www-authenticate": "Bearer"},
            )
            return
        record_of(scope).caller = Caller.of_key_digest(presented)  # equal to the digest that matched
        await self.app(scope, receive, send)
