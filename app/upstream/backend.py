"""The one boundary every upstream call crosses: request body, timing, usage, cost and the log line."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from app.config import GatewayConfig, OpenAIProvider
from app.errors import UpstreamError
from app.moa.types import Answer, CallSpec, Usage
from app.tokens import count_prompt_tokens, count_tokens
from app.upstream.http import HttpTransport
from app.upstream.simulated import SimulatedTransport
from app.upstream.transport import Transport

logger = logging.getLogger(__name__)


class UpstreamBackend:
    """Implements the engine's ChatBackend over the configured providers."""

    def __init__(self, config: GatewayConfig, client: httpx.AsyncClient) -> None:
        self._config = config
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
            self._log_failure(spec, started, exc)
            raise
        usage = _usage(payload.get("usage"), spec, text)
        return self._answer(spec, started, text, finish_reason, usage, ttft_s=None)

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
            self._log_failure(spec, started, exc)
            raise
        except (AttributeError, TypeError) as exc:
            error = UpstreamError(f"model {spec.model}: malformed stream chunk ({exc})", model=spec.model)
            self._log_failure(spec, started, error)
            raise error from None
        text = "".join(parts)
        yield self._answer(spec, started, text, finish_reason, _usage(reported, spec, text), ttft_s)

    def _transport(self, spec: CallSpec) -> Transport:
        return self._transports[self._config.models[spec.model].provider]

    def _body(self, spec: CallSpec, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            **spec.params,
            "model": self._config.upstream_name(spec.model),
            "messages": spec.messages,
        }
        if stream:
            body["stream"] = True
            provider = self._config.providers[self._config.models[spec.model].provider]
            if not isinstance(provider, OpenAIProvider) or provider.stream_include_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    def _answer(
        self,
        spec: CallSpec,
        started: float,
        text: str,
        finish_reason: str,
        usage: Usage,
        ttft_s: float | None,
    ) -> Answer:
        price = self._config.models[spec.model].price
        cost = 0.0
        if price is not None:
            cost = (
                usage.prompt_tokens * price.input_per_mtok + usage.completion_tokens * price.output_per_mtok
            ) / 1e6
        logger.info(
            "upstream call model=%s role=%s layer=%d status=ok latency_ms=%.1f prompt_tokens=%d "
            "completion_tokens=%d cost_usd=%.6f",
            spec.model,
            spec.role,
            spec.layer,
            (time.perf_counter() - started) * 1000,
            usage.prompt_tokens,
            usage.completion_tokens,
            cost,
        )
        return Answer(text, finish_reason, usage, cost, ttft_s)

    def _log_failure(self, spec: CallSpec, started: float, exc: UpstreamError) -> None:
        logger.warning(
            "upstream call model=%s role=%s layer=%d status=error latency_ms=%.1f error=%s",
            spec.model,
            spec.role,
            spec.layer,
            (time.perf_counter() - started) * 1000,
            exc.message,
        )


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
        return Usage(reported["prompt_tokens"], int(reported.get("completion_tokens") or 0))
    return Usage(count_prompt_tokens(spec.messages), count_tokens(text), estimated=True)
