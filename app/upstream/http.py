"""OpenAI-compatible providers over the shared httpx client: requests, SSE decoding, error mapping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from httpx_sse import EventSource

from app.config import OpenAIProvider
from app.errors import UpstreamError, UpstreamRejectedError, UpstreamTimeoutError, redact
from app.request_context import request_id_var

_JSON = {"content-type": "application/json", "accept": "application/json"}
_REJECTED = {400, 413, 422}  # the request itself is at fault: the client should see why
_TIMED_OUT = {408, 504, 524}


class HttpTransport:
    def __init__(self, client: httpx.AsyncClient, provider: OpenAIProvider, secrets: list[str]) -> None:
        self._client = client
        self._url = provider.base_url.rstrip("/") + "/chat/completions"
        self._headers = {**_JSON, **provider.headers}
        if provider.api_key is not None:
            self._headers["authorization"] = f"Bearer {provider.api_key.get_secret_value()}"
        self._total_s = provider.timeout_s
        self._timeout = httpx.Timeout(provider.timeout_s, connect=min(10.0, provider.timeout_s))
        self._secrets = secrets

    async def complete(self, alias: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._total_s):
                response = await self._client.post(
                    self._url,
                    content=orjson.dumps(body),
                    headers=self._request_headers(),
                    timeout=self._timeout,
                )
        except (TimeoutError, httpx.TimeoutException):
            raise UpstreamTimeoutError(
                f"model {alias}: no answer within {self._total_s:g}s", model=alias
            ) from None
        except httpx.HTTPError as exc:
            raise self._unreachable(alias, exc) from None
        if response.status_code >= 400:
            raise self._status_error(alias, response.status_code, response.content)
        payload = _decode(alias, response.content)
        if not payload.get("choices"):
            raise UpstreamError(f"model {alias}: the response has no choices", model=alias)
        return payload

    async def stream(self, alias: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        request = self._client.build_request(
            "POST",
            self._url,
            content=orjson.dumps(body),
            headers=self._request_headers(),
            timeout=self._timeout,
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException:
            raise UpstreamTimeoutError(
                f"model {alias}: no answer within {self._total_s:g}s", model=alias
            ) from None
        except httpx.HTTPError as exc:
            raise self._unreachable(alias, exc) from None
        try:
            if response.status_code >= 400:
                raise self._status_error(alias, response.status_code, await response.aread())
            async for event in EventSource(response).aiter_sse():
                if event.data == "[DONE]":
                    return
                if not event.data:
                    continue
                chunk = _decode(alias, event.data.encode())
                if "error" in chunk:
                    raise self._error_frame(alias, chunk["error"])
                yield chunk
        except httpx.TimeoutException:
            raise UpstreamTimeoutError(f"model {alias}: the stream stalled", model=alias) from None
        except httpx.HTTPError as exc:
            raise self._unreachable(alias, exc) from None
        finally:
            await response.aclose()

    def _request_headers(self) -> dict[str, str]:
        """The provider's headers plus this request's id, so upstream logs can be joined with ours."""
        return {**self._headers, "x-request-id": request_id_var.get()}

    def _unreachable(self, alias: str, exc: httpx.HTTPError) -> UpstreamError:
        reason = redact(str(exc) or type(exc).__name__, self._secrets)
        return UpstreamError(
            f"model {alias}: the provider could not be reached ({reason})", model=alias, kind="connection"
        )

    def _status_error(self, alias: str, status: int, content: bytes) -> UpstreamError:
        if status in (401, 403):  # the provider's text may echo part of the key: say nothing of it
            return UpstreamError(
                f"model {alias}: the provider refused the gateway's credentials ({status})",
                model=alias,
                upstream_status=status,
                kind="auth",
            )
        detail = redact(_error_message(content), self._secrets)
        message = f"model {alias}: the provider answered {status}: {detail}"
        if status in _REJECTED:
            return UpstreamRejectedError(message, model=alias, upstream_status=status)
        if status in _TIMED_OUT:
            return UpstreamTimeoutError(message, model=alias, upstream_status=status)
        kind = "rate_limited" if status == 429 else "server_error" if status >= 500 else "status"
        return UpstreamError(message, model=alias, upstream_status=status, kind=kind)

    def _error_frame(self, alias: str, error: Any) -> UpstreamError:
        detail = error.get("message") if isinstance(error, dict) else error
        message = redact(str(detail)[:300], self._secrets)
        return UpstreamError(
            f"model {alias}: the provider sent an error mid-stream: {message}", model=alias, kind="mid_stream"
        )


def _decode(alias: str, content: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            f"model {alias}: the provider sent a body that is not JSON", model=alias
        ) from None
    if not isinstance(payload, dict):
        raise UpstreamError(f"model {alias}: the provider sent JSON that is not an object", model=alias)
    return payload


def _error_message(content: bytes) -> str:
    """The provider's own error message if it sent OpenAI's shape, else the start of its body."""
    try:
        payload = orjson.loads(content)
    except orjson.JSONDecodeError:
        return content[:200].decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
    return str(payload)[:200]
