"""OpenAI-compatible providers over the shared httpx client: requests, SSE decoding, deadlines, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from httpx_sse import EventSource, SSEError

from app.config import OpenAIProvider
from app.errors import UpstreamError, UpstreamRejectedError, UpstreamTimeoutError, redact
from app.request_context import request_id_var
from app.upstream.retry import parse_retry_after
from app.upstream.transport import ChunkTimeoutError, paced

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
        self._first_chunk_s = provider.first_token_timeout_s or provider.timeout_s
        self._idle_s = provider.idle_timeout_s
        # httpx's read timeout bounds each socket read; our asyncio deadlines bound the call as a whole.
        read_s = max(provider.timeout_s, self._first_chunk_s, self._idle_s)
        self._timeout = httpx.Timeout(read_s, connect=provider.connect_timeout_s)
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
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise self._timed_out(alias, exc, f"no answer within {self._total_s:g}s") from None
        except httpx.HTTPError as exc:
            raise self._unreachable(alias, exc) from None
        if response.status_code >= 400:
            raise self._status_error(alias, response)
        payload = decode_json(alias, response.content)
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
            async with asyncio.timeout(self._first_chunk_s):
                response = await self._client.send(request, stream=True)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise self._timed_out(alias, exc, f"no answer within {self._first_chunk_s:g}s") from None
        except httpx.HTTPError as exc:
            raise self._unreachable(alias, exc) from None
        try:
            if response.status_code >= 400:
                await response.aread()
                raise self._status_error(alias, response)
            async for event in paced(EventSource(response).aiter_sse(), self._first_chunk_s, self._idle_s):
                if event.data == "[DONE]":
                    return
                if not event.data:
                    continue
                chunk = decode_json(alias, event.data.encode())
                if "error" in chunk:
                    raise self._error_frame(alias, chunk["error"])
                yield chunk
        except ChunkTimeoutError as exc:
            raise UpstreamTimeoutError(f"model {alias}: {exc}", model=alias) from None
        except httpx.TimeoutException as exc:
            raise self._timed_out(alias, exc, "the stream stalled") from None
        except SSEError:
            raise UpstreamError(
                f"model {alias}: the provider did not answer with an event stream", model=alias
            ) from None
        except httpx.HTTPError as exc:
            raise self._unreachable(alias, exc) from None
        finally:
            await response.aclose()

    def _request_headers(self) -> dict[str, str]:
        """The provider's headers plus this request's id, so upstream logs can be joined with ours."""
        return {**self._headers, "x-request-id": request_id_var.get()}

    def _timed_out(self, alias: str, exc: BaseException, what: str) -> UpstreamError:
        if isinstance(exc, httpx.ConnectTimeout):
            # The aiohttp transport reports every connection failure (refused, reset, closed) as a
            # ConnectTimeout; its message says which it was.
            return self._unreachable(alias, exc)
        return UpstreamTimeoutError(f"model {alias}: {what}", model=alias)

    def _unreachable(self, alias: str, exc: BaseException) -> UpstreamError:
        reason = redact(str(exc) or type(exc).__name__, self._secrets)
        return UpstreamError(
            f"model {alias}: the provider could not be reached ({reason})", model=alias, kind="connection"
        )

    def _status_error(self, alias: str, response: httpx.Response) -> UpstreamError:
        return status_error(
            alias,
            response.status_code,
            response.content,
            self._secrets,
            retry_after_s=parse_retry_after(response.headers.get("retry-after")),
        )

    def _error_frame(self, alias: str, error: Any) -> UpstreamError:
        detail = error.get("message") if isinstance(error, dict) else error
        message = redact(str(detail)[:300], self._secrets)
        return UpstreamError(
            f"model {alias}: the provider sent an error mid-stream: {message}", model=alias, kind="mid_stream"
        )


def status_error(
    alias: str, status: int, content: bytes, secrets: list[str], *, retry_after_s: float | None = None
) -> UpstreamError:
    """The gateway error for a provider's HTTP error status."""
    if status in (401, 403):  # the provider's text may echo part of the key: say nothing of it
        return UpstreamError(
            f"model {alias}: the provider refused the gateway's credentials ({status})",
            model=alias,
            upstream_status=status,
            kind="auth",
        )
    detail = redact(_error_message(content), secrets)
    message = f"model {alias}: the provider answered {status}: {detail}"
    if status in _REJECTED:
        return UpstreamRejectedError(message, model=alias, upstream_status=status)
    if status in _TIMED_OUT:
        return UpstreamTimeoutError(message, model=alias, upstream_status=status)
    kind = "rate_limited" if status == 429 else "server_error" if status >= 500 else "status"
    return UpstreamError(message, model=alias, upstream_status=status, kind=kind, retry_after_s=retry_after_s)


def decode_json(alias: str, content: bytes) -> dict[str, Any]:
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
