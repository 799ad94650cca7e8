"""The upstream client over httpx: its own pool (`MOA_UPSTREAM_TRANSPORT=httpx`), or any httpx client
handed in, such as one over `httpx.MockTransport` in tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import h11
import httpx

from moa_gateway.upstream.client import (
    KEEPALIVE_EXPIRY_S,
    ClientError,
    ConnectError,
    DecodingError,
    ProtocolError,
    ReadTimeout,
    content_codings,
)


def pooled_httpx_client(max_connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,  # fan-out reuses them all; fewer would churn
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120.0))


class HttpxClient:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    def endpoint(
        self, url: str, headers: dict[str, str], *, connect_s: float, read_s: float
    ) -> HttpxEndpoint:
        return HttpxEndpoint(self._client, httpx.URL(url), headers, httpx.Timeout(read_s, connect=connect_s))

    @property
    def is_closed(self) -> bool:
        return self._client.is_closed

    async def aclose(self) -> None:
        await self._client.aclose()


class HttpxEndpoint:
    def __init__(
        self, client: httpx.AsyncClient, url: httpx.URL, headers: dict[str, str], timeout: httpx.Timeout
    ) -> None:
        # Each call builds its request from these and hands it to the client's transport (its pool): the
        # client's build_request() and send() merge URLs, headers and cookies and run auth, redirect and
        # cookie handling this gateway does not use. The client's own headers come first, as send() would.
        merged = {name.lower(): value for name, value in client.headers.items()}
        merged.update((name.lower(), value) for name, value in headers.items())
        self._headers = [(name.encode(), value.encode()) for name, value in merged.items()]
        self._url = url
        self._transport = client._transport_for_url(url)  # a proxy's, if the environment sets one
        self._extensions = {"timeout": timeout.as_dict()}

    async def post(self, content: bytes, headers: list[tuple[str, str]]) -> HttpxResponse:
        sent = self._headers + [(name.encode(), value.encode()) for name, value in headers]
        request = httpx.Request("POST", self._url, headers=sent, content=content, extensions=self._extensions)
        with mapped_errors(head=True):
            response = await self._transport.handle_async_request(request)
        response.request = request
        return HttpxResponse(response)


class HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status_code

    def header(self, name: str) -> str | None:
        value: str | None = self._response.headers.get(name)
        return value

    def encodings(self) -> list[str]:
        if self._response.is_stream_consumed:  # built whole in memory (a MockTransport's): decoded already
            return []
        return content_codings(self._response.headers.get_list("content-encoding"))

    def aiter_raw(self) -> AsyncIterator[bytes]:
        if self._response.is_stream_consumed:
            return _mapped_chunks(self._response.aiter_bytes())
        return _mapped_chunks(self._response.aiter_raw())

    def aiter_decoded(self) -> AsyncIterator[bytes]:
        return _mapped_chunks(self._response.aiter_bytes())

    async def aclose(self) -> None:
        with mapped_errors(head=False):
            await self._response.aclose()


@contextlib.contextmanager
def mapped_errors(*, head: bool) -> Iterator[None]:
    """httpx's exceptions raised as the client protocol's (upstream/client.py), from the original.

    httpx's own pool raises a RemoteProtocolError from h11's when the response head breaks HTTP (a
    protocol error); in the body the same error means a connection cut short (a connection failure,
    retried)."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise ConnectError(str(exc)) from exc
    except httpx.TimeoutException as exc:
        raise ReadTimeout(str(exc)) from exc
    except httpx.DecodingError as exc:
        raise DecodingError(str(exc)) from exc
    except httpx.RemoteProtocolError as exc:
        if head and _caused_by_h11(exc):
            raise ProtocolError(str(exc)) from exc
        raise ConnectError(str(exc)) from exc
    except httpx.HTTPError as exc:  # a proxy error, a bad URL
        raise ClientError(str(exc)) from exc


def _caused_by_h11(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, h11.RemoteProtocolError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


async def _mapped_chunks(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    with mapped_errors(head=False):
        async for chunk in chunks:
            yield chunk
