"""The one boundary every upstream call crosses: request body, timing, usage, cost, metrics, log line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from app.config import GatewayConfig, OpenAIProvider
from app.errors import UpstreamError
from app.logs import fields_text
from app.metrics import Metrics
from app.moa.types import Answer, CallSpec, Usage
from app.tokens import count_prompt_tokens, count_tokens
from app.upstream.http import HttpTransport
from app.upstream.simulated import SimulatedTransport
from app.upstream.transport import Transport

logger = logging.getLogger(__name__)


class UpstreamBackend:
    """Implements the engine's ChatBackend over the configured providers."""

    def __init__(self, config: GatewayConfig, client: httpx.AsyncClient, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics
        secrets = config.secrets()
        self._transports: dict[str, Transport] = {
            name: HttpTransport(client, p, secrets)
            if isinstance(p, OpenAIProvider)
            else SimulatedTransport(p)
            for name, p in config.providers.items()
        }

    async def complete(self, spec: CallSpec) -> Answer:
        started = time.perf_counter()
        try:
            payload = await self._transport(spec).complete(spec.model, self._body(spec, stream=False))
            text, finish_reason = _parse_choice(spec.model, payload)
        except UpstreamError as exc:
            self._failed(spec, started, exc)
            raise
        except asyncio.CancelledError:
            self._cancelled(spec, started)
            raise
        return self._succeeded(
            spec, started, text, finish_reason, _usage(payload.get("usage"), spec, text), None
        )

    async def stream(self, spec: CallSpec) -> AsyncIterator[str | Answer]:
        started = time.perf_counter()
        ttft_s: float | None = None
        parts: list[str] = []
        finish_reason = "stop"
        reported: Any = None
        try:
            async for chunk in self._transport(spec).stream(spec.model, self._body(spec, stream=True)):
                reported = chunk.get("usage") or reported
                for choice in chunk.get("choices") or ():
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        if ttft_s is None:
                            ttft_s = time.perf_counter() - started
                        parts.append(content)
                        yield content
                    finish_reason = choice.get("finish_reason") or finish_reason
        except UpstreamError as exc:
            self._failed(spec, started, exc)
            raise
        except (AttributeError, TypeError) as exc:
            error = UpstreamError(f"model {spec.model}: malformed stream chunk ({exc})", model=spec.model)
            self._failed(spec, started, error)
            raise error from None
        except (asyncio.CancelledError, GeneratorExit):  # the request was cancelled or the stream closed
            self._cancelled(spec, started)
            raise
        text = "".join(parts)
        yield self._succeeded(spec, started, text, finish_reason, _usage(reported, spec, text), ttft_s)

    def _transport(self, spec: CallSpec) -> Transport:
        return self._transports[self._config.provider_of(spec.model)]

    def _body(self, spec: CallSpec, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            **spec.params,
            "model": self._config.upstream_name(spec.model),
            "messages": spec.messages,
        }
        if stream:
            body["stream"] = True
            provider = self._config.providers[self._config.provider_of(spec.model)]
            if not isinstance(provider, OpenAIProvider) or provider.stream_include_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    def _succeeded(
        self,
        spec: CallSpec,
        started: float,
        text: str,
        finish_reason: str,
        usage: Usage,
        ttft_s: float | None,
    ) -> Answer:
        duration_s = time.perf_counter() - started
        price = self._config.models[spec.model].price
        cost = (
            price.cost_usd(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
            if price
            else 0.0
        )
        self._metrics.upstream_call(
            provider=self._config.provider_of(spec.model),
            model=spec.model,
            role=spec.role,
            outcome="ok",
            duration_s=duration_s,
            usage=usage,
            cost_usd=cost,
            ttft_s=ttft_s,
        )
        self._log(
            logging.INFO,
            spec,
            "ok",
            duration_s,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            usage_estimated=usage.estimated,
            cost_usd=round(cost, 10),
            ttft_ms=None if ttft_s is None else round(ttft_s * 1000, 1),
        )
        return Answer(text, finish_reason, usage, cost, ttft_s)

    def _failed(self, spec: CallSpec, started: float, exc: UpstreamError) -> None:
        duration_s = time.perf_counter() - started
        outcome = "timeout" if exc.kind == "timeout" else "error"
        self._metrics.upstream_call(
            provider=self._config.provider_of(spec.model),
            model=spec.model,
            role=spec.role,
            outcome=outcome,
            duration_s=duration_s,
            error_kind=exc.kind,
        )
        self._log(logging.WARNING, spec, outcome, duration_s, kind=exc.kind, error=exc.message)

    def _cancelled(self, spec: CallSpec, started: float) -> None:
        duration_s = time.perf_counter() - started
        self._metrics.upstream_call(
            provider=self._config.provider_of(spec.model),
            model=spec.model,
            role=spec.role,
            outcome="cancelled",
            duration_s=duration_s,
        )
        self._log(logging.INFO, spec, "cancelled", duration_s)

    def _log(self, level: int, spec: CallSpec, outcome: str, duration_s: float, **extra: Any) -> None:
        fields = {
            "event": "upstream_call",
            "provider": self._config.provider_of(spec.model),
            "model": spec.model,
            "role": spec.role,
            "layer": spec.layer,
            "outcome": outcome,
            "latency_ms": round(duration_s * 1000, 1),
            **extra,
        }
        logger.log(level, "%s", fields_text(fields), extra={"fields": fields})


def _parse_choice(alias: str, payload: dict[str, Any]) -> tuple[str, str]:
    try:
        choice = payload["choices"][0]
        content = (choice.get("message") or {}).get("content")
        return (content if isinstance(content, str) else ""), (choice.get("finish_reason") or "stop")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise UpstreamError(
            f"model {alias}: malformed response (no choices[0].message)", model=alias
        ) from None


def _usage(reported: Any, spec: CallSpec, text: str) -> Usage:
    """The provider's usage, or our estimate (marked) when it reported none."""
    if isinstance(reported, dict) and isinstance(reported.get("prompt_tokens"), int):
        details = reported.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        return Usage(
            reported["prompt_tokens"],
            int(reported.get("completion_tokens") or 0),
            cached_tokens=cached if isinstance(cached, int) else 0,
        )
    return Usage(count_prompt_tokens(spec.messages), count_tokens(text), estimated=True)
