"""Provider `type: simulated`: the simulator called in-process, failing the way the HTTP path fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from moa_gateway.config import SimulatedProvider
from moa_gateway.core.failures import FailureKind
from moa_gateway.core.ports import TraceContext
from moa_gateway.sim import core
from moa_gateway.sim.prefix_cache import PrefixCache
from moa_gateway.upstream.failures import rejected_error, timeout_error, upstream_error
from moa_gateway.upstream.providers.openai_http import status_error
from moa_gateway.upstream.retry import parse_retry_after
from moa_gateway.upstream.transport import CallDeadline, ChunkTimeoutError, paced, truncated_stream


class SimulatedTransport:
    def __init__(self, provider: SimulatedProvider) -> None:
        self._defaults = core.SimProfile(provider.ttft_ms, provider.tokens_per_s)
        self._timeout_s = provider.timeout_s
        self._first_chunk_s = provider.first_token_timeout_s or provider.timeout_s
        self._idle_s = provider.idle_timeout_s
        self._faults = core.FaultCounter()
        self._cache = PrefixCache()  # reports cached prompt tokens, as a provider's prompt cache does

    # In-process: no wire to carry a trace context on (`trace` is accepted and unused).

    async def complete(self, alias: str, content: bytes, trace: TraceContext | None = None) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout_s):
                payload = await core.complete(
                    orjson.loads(content), self._defaults, self._faults, self._cache
                )
        except TimeoutError:
            raise timeout_error(
                f"model {alias}: no answer within {self._timeout_s:g}s", model=alias
            ) from None
        except Exception as exc:
            raise _as_upstream_error(alias, exc) from None
        if not payload.get("choices"):
            raise upstream_error(f"model {alias}: the response has no choices", model=alias)
        return payload

    async def embed(self, alias: str, content: bytes, trace: TraceContext | None = None) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await core.embed(orjson.loads(content), self._defaults, self._faults)
        except TimeoutError:
            raise timeout_error(
                f"model {alias}: no answer within {self._timeout_s:g}s", model=alias
            ) from None
        except Exception as exc:
            raise _as_upstream_error(alias, exc) from None

    async def stream(
        self, alias: str, content: bytes, trace: TraceContext | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        deadline = CallDeadline.start(self._timeout_s)
        chunks = core.stream(orjson.loads(content), self._defaults, self._faults, self._cache)
        try:
            async for chunk in paced(chunks, self._first_chunk_s, self._idle_s, deadline):
                yield chunk
        except ChunkTimeoutError as exc:
            raise timeout_error(f"model {alias}: {exc}", model=alias) from None
        except Exception as exc:
            raise _as_upstream_error(alias, exc) from None


def _as_upstream_error(alias: str, exc: Exception) -> Exception:
    """The simulator's request errors and faults, as the HTTP transport would report them."""
    if isinstance(exc, core.SimulatorRequestError):
        return rejected_error(f"model {alias}: {exc}", model=alias)
    if isinstance(exc, core.SimulatedHTTPError):
        if exc.status < 400:
            return upstream_error(f"model {alias}: the provider sent a body that is not JSON", model=alias)
        retry_after = parse_retry_after(exc.headers.get("retry-after"))
        return status_error(alias, exc.status, exc.body, [], retry_after_s=retry_after)
    if isinstance(exc, core.SimulatedReset):
        return upstream_error(
            f"model {alias}: the connection was reset", model=alias, kind=FailureKind.CONNECTION
        )
    if isinstance(exc, core.SimulatedTruncation):
        return truncated_stream(alias)
    if isinstance(exc, core.SimulatedOversize):
        return upstream_error(f"model {alias}: {exc}", model=alias)
    return exc
