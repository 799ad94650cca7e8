"""OpenAI-compatible providers over the shared httpx client: requests, bounded reads, SSE decoding,
deadlines, and the one translation of transport errors into failure kinds."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncGenerator
from typing import Any

import orjson
from yarl import URL

from moa_gateway.config import OpenAIProvider
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.ports import TraceContext
from moa_gateway.request_context import request_id_var
from moa_gateway.upstream.body import (
    AnswerTooLargeError,
    BodyDecodingError,
    UpstreamLimits,
    read_body,
    read_prefix,
    sse_events,
)
from moa_gateway.upstream.client import (
    ClientError,
    ConnectError,
    DecodingError,
    Endpoint,
    ProtocolError,
    ReadTimeout,
    UpstreamClient,
    UpstreamResponse,
)
from moa_gateway.upstream.failures import rejected_error, timeout_error, upstream_error
from moa_gateway.upstream.pool import ConnectionPool
from moa_gateway.upstream.retry import parse_retry_after
from moa_gateway.upstream.secrets import redact
from moa_gateway.upstream.transport import (
    CallDeadline,
    ChunkTimeoutError,
    has_finish_reason,
    paced,
    truncated_stream,
)

_JSON = {
    "content-type": "application/json",
    "accept": "application/json",
    "accept-encoding": "gzip, deflate",  # only what app/moa_gateway/upstream/body.py inflates in bounded steps
    "user-agent": "moa-gateway",  # the same whichever client library sends it
}
_REJECTED = {400, 413, 422}  # the request itself is at fault: the client should see why
_TIMED_OUT = {408, 504, 524}


class HttpTransport:
    def __init__(
        self,
        client: UpstreamClient,
        provider: OpenAIProvider,
        secrets: list[str],
        limits: UpstreamLimits | None = None,
        *,
        pool: ConnectionPool | None = None,
        name: str = "",
    ) -> None:
        self._pool = pool  # counts this provider's connections against its cap and the pool's total
        self._name = name
        # Credentials in the base URL become a Basic header: never sent in the URL, and aiohttp refuses
        # a URL with credentials beside an Authorization header.
        url = URL(provider.base_url.rstrip("/"))
        base = str(url.with_user(None))
        headers = {**_JSON, **provider.headers}
        if url.user or url.password:
            userinfo = f"{url.user or ''}:{url.password or ''}".encode()
            headers["authorization"] = f"Basic {base64.b64encode(userinfo).decode()}"
        if provider.api_key is not None:
            headers["authorization"] = f"Bearer {provider.api_key.get_secret_value()}"
        self._total_s = provider.timeout_s
        self._first_chunk_s = provider.first_token_timeout_s or provider.timeout_s
        self._idle_s = provider.idle_timeout_s
        # A client that needs a socket read timeout gets the longest wait; our asyncio deadlines bound
        # the call as a whole.
        read_s = max(provider.timeout_s, self._first_chunk_s, self._idle_s)
        connect_s = provider.connect_timeout_s
        self._chat = client.endpoint(base + "/chat/completions", headers, connect_s=connect_s, read_s=read_s)
        self._embeddings = client.endpoint(base + "/embeddings", headers, connect_s=connect_s, read_s=read_s)
        self._secrets = secrets
        self._limits = limits or UpstreamLimits()

    async def complete(self, alias: str, content: bytes, trace: TraceContext | None = None) -> dict[str, Any]:
        payload = await self._post(alias, self._chat, content, trace)
        if not payload.get("choices"):
            raise upstream_error(f"model {alias}: the response has no choices", model=alias)
        return payload

    async def embed(self, alias: str, content: bytes, trace: TraceContext | None = None) -> dict[str, Any]:
        payload = await self._post(alias, self._embeddings, content, trace)
        if not isinstance(payload.get("data"), list):
            raise upstream_error(f"model {alias}: the response has no embeddings list", model=alias)
        return payload

    async def _post(
        self, alias: str, endpoint: Endpoint, content: bytes, trace: TraceContext | None
    ) -> dict[str, Any]:
        """A JSON request and its JSON answer, within `timeout_s`, the body read within its limit."""
        try:
            async with asyncio.timeout(self._total_s):  # waiting for a connection counts too
                await self._acquire()
                try:
                    response = await self._send(endpoint, content, trace)
                    try:
                        if response.status_code >= 400:
                            raise await self._status_error(alias, response)
                        body = await read_body(response, self._limits.max_body_bytes)
                    finally:
                        await response.aclose()
                finally:
                    self._release()
        except Exception as exc:
            error = self._translate(alias, exc, f"no answer within {self._total_s:g}s")
            if error is exc:
                raise
            raise error from None
        return decode_json(alias, body)

    async def stream(
        self, alias: str, content: bytes, trace: TraceContext | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        deadline = CallDeadline.start(self._total_s)  # timeout_s bounds the whole call, streamed too
        wait_s, late = deadline.wait(self._first_chunk_s, f"no answer within {self._first_chunk_s:g}s")
        try:
            async with asyncio.timeout(wait_s):
                await self._acquire()
                try:
                    response = await self._send(self._chat, content, trace)
                except BaseException:
                    self._release()
                    raise
        except Exception as exc:
            error = self._translate(alias, exc, late)
            if error is exc:
                raise
            raise error from None
        try:
            if response.status_code >= 400:
                late = f"no complete answer within {self._total_s:g}s"
                async with asyncio.timeout_at(deadline.at):
                    raise await self._status_error(alias, response)
            late = "the stream stalled"
            content_type = (response.header("content-type") or "").partition(";")[0]
            if "text/event-stream" not in content_type:
                raise upstream_error(
                    f"model {alias}: the provider did not answer with an event stream", model=alias
                )
            finished = False
            events = sse_events(response, self._limits)
            async for event in paced(events, self._first_chunk_s, self._idle_s, deadline):
                if event.data == "[DONE]":
                    return
                if not event.data:
                    continue
                chunk = decode_json(alias, event.data.encode())
                if "error" in chunk:
                    raise self._error_frame(alias, chunk["error"])
                finished = finished or has_finish_reason(chunk)
                yield chunk
            if not finished:
                raise truncated_stream(alias)
        except Exception as exc:
            error = self._translate(alias, exc, late)
            if error is exc:
                raise
            raise error from None
        finally:
            try:
                await response.aclose()
            finally:
                self._release()

    async def _acquire(self) -> None:
        if self._pool is not None:
            await self._pool.acquire(self._name)

    def _release(self) -> None:
        if self._pool is not None:
            self._pool.release(self._name)

    async def _send(self, endpoint: Endpoint, content: bytes, trace: TraceContext | None) -> UpstreamResponse:
        """POST `content`; the response's body is not read yet (close it)."""
        # This request's id, so upstream logs can be joined with ours.
        headers = [("x-request-id", request_id_var.get())]
        if trace:  # the call's span continues upstream
            headers += trace.items()
        return await endpoint.post(content, headers)

    def _translate(self, alias: str, exc: Exception, late: str) -> Exception:
        """The Failure for a failure while calling the provider (`late`: what a timeout means
        here); an exception this does not know is returned as it is, for the backend to report. The
        client adapters raise their libraries' errors as the client protocol's (upstream/client.py)."""
        if isinstance(exc, Failure):
            return exc
        if isinstance(exc, ChunkTimeoutError):
            return timeout_error(f"model {alias}: {exc}", model=alias)
        if isinstance(exc, ConnectError):  # its message says which: refused, reset, closed, a proxy
            return self._unreachable(alias, exc)
        if isinstance(exc, TimeoutError | ReadTimeout):
            return timeout_error(f"model {alias}: {late}", model=alias)
        if isinstance(exc, AnswerTooLargeError):
            return upstream_error(f"model {alias}: {exc}", model=alias)
        if isinstance(exc, BodyDecodingError | DecodingError):
            reason = self._reason(exc)
            return upstream_error(
                f"model {alias}: the provider sent a body that cannot be decoded ({reason})", model=alias
            )
        if isinstance(exc, ProtocolError):
            reason = self._reason(exc)
            return upstream_error(
                f"model {alias}: the provider sent a malformed HTTP response ({reason})", model=alias
            )
        if isinstance(exc, ClientError):  # a body cut short, a bad URL
            return self._unreachable(alias, exc)
        return exc

    def _reason(self, exc: BaseException) -> str:
        """One short, redacted line of an exception's message: some quote the upstream's bytes."""
        line = str(exc).strip().split("\n", 1)[0].rstrip(":")
        return redact(line or type(exc).__name__, self._secrets, limit=120)

    def _unreachable(self, alias: str, exc: BaseException) -> Failure:
        return upstream_error(
            f"model {alias}: the provider could not be reached ({self._reason(exc)})",
            model=alias,
            kind=FailureKind.CONNECTION,
        )

    async def _status_error(self, alias: str, response: UpstreamResponse) -> Failure:
        try:
            content = await read_prefix(response, self._limits.max_error_body_bytes)
        except (ClientError, BodyDecodingError):  # the status says enough
            content = b""
        return status_error(
            alias,
            response.status_code,
            content,
            self._secrets,
            retry_after_s=parse_retry_after(response.header("retry-after")),
        )

    def _error_frame(self, alias: str, error: Any) -> Failure:
        detail = error.get("message") if isinstance(error, dict) else error
        message = redact(_text_of(detail), self._secrets, limit=300)
        return upstream_error(
            f"model {alias}: the provider sent an error mid-stream: {message}",
            model=alias,
            kind=FailureKind.MID_STREAM,
        )


def status_error(
    alias: str, status: int, content: bytes, secrets: list[str], *, retry_after_s: float | None = None
) -> Failure:
    """The gateway error for a provider's HTTP error status."""
    if status in (401, 403):  # the provider's text may echo part of the key: say nothing of it
        return upstream_error(
            f"model {alias}: the provider refused the gateway's credentials ({status})",
            model=alias,
            upstream_status=status,
            kind=FailureKind.AUTH,
        )
    detail = _error_message(content, secrets)
    message = f"model {alias}: the provider answered {status}: {detail}"
    if status in _REJECTED:
        return rejected_error(message, model=alias, upstream_status=status)
    if status in _TIMED_OUT:
        return timeout_error(message, model=alias, upstream_status=status)
    kind = (
        FailureKind.RATE_LIMITED
        if status == 429
        else FailureKind.SERVER_ERROR
        if status >= 500
        else FailureKind.STATUS
    )
    return upstream_error(
        message, model=alias, upstream_status=status, kind=kind, retry_after_s=retry_after_s
    )


def decode_json(alias: str, content: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise upstream_error(
            f"model {alias}: the provider sent a body that is not JSON", model=alias
        ) from None
    if not isinstance(payload, dict):
        raise upstream_error(f"model {alias}: the provider sent JSON that is not an object", model=alias)
    return payload


def _error_message(content: bytes, secrets: list[str]) -> str:
    """The provider's own error message if it sent OpenAI's shape, else the start of its body; scrubbed
    of every secret before it is cut, so no cut can leave part of one."""
    try:
        payload = orjson.loads(content)
    except orjson.JSONDecodeError:
        text = content.decode("utf-8", "replace").strip() or "(empty body)"
        return redact(text, secrets, limit=200)
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return redact(_text_of(error["message"]), secrets, limit=300)
        if isinstance(error, str):
            return redact(error, secrets, limit=300)
    return redact(_text_of(payload), secrets, limit=200)


def _text_of(value: Any) -> str:
    """`value`, which may be any JSON however deep, as text (error bodies are read 64 KiB at most)."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode("utf-8", "replace")
    except orjson.JSONEncodeError:  # nested past orjson's depth limit; str() would recurse as deep
        return f"({type(value).__name__})"
