"""The default upstream client: aiohttp's connection pool, called directly.

At 64 concurrent MoA requests httpx's own pool served 107 req/s with timeouts, aiohttp's 580 req/s; and
going through httpx's request and response objects on top of aiohttp cost about a fifth of the gateway's
CPU with 500 MoA requests in flight (py-spy; docs/benchmarks.md). So each endpoint prepares its headers
and proxy once, and each call is one `session.request`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from urllib.request import getproxies, proxy_bypass

import aiohttp
import httpx
from multidict import CIMultiDict
from yarl import URL

from moa_gateway.upstream.client import (
    KEEPALIVE_EXPIRY_S,
    ClientError,
    ConnectError,
    ProtocolError,
    content_codings,
)

_CHUNK_BYTES = 64 * 1024


class AiohttpClient:
    def __init__(self, max_connections: int) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def session(self) -> aiohttp.ClientSession:
        """Made on the first call, inside the event loop. No cookie jar: an upstream's cookies have no
        business in the next user's call. No `trust_env`: it looks up proxies and .netrc in a thread on
        every call; each endpoint resolves its proxy once instead (`env_proxy`)."""
        if self._closed:
            raise RuntimeError("the upstream client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=KEEPALIVE_EXPIRY_S,
                ssl=httpx.create_ssl_context(),  # the same trust store as the httpx client
            )
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def endpoint(
        self, url: str, headers: dict[str, str], *, connect_s: float, read_s: float
    ) -> AiohttpEndpoint:
        # No read timeout: it re-arms a timer on every socket read, and the callers' asyncio deadlines
        # already bound each wait (the head, the body, each stream chunk).
        return AiohttpEndpoint(self, url, headers, aiohttp.ClientTimeout(sock_connect=connect_s))

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()


def env_proxy(url: URL) -> URL | None:
    """The proxy the environment names for `url`, as httpx would choose it: HTTP_PROXY or HTTPS_PROXY by
    the URL's scheme, else ALL_PROXY; none for a host NO_PROXY names. (aiohttp's own lookup ignores
    ALL_PROXY and https:// proxies, and calls those directly.)"""
    if url.host is None or proxy_bypass(url.host):
        return None
    proxies = getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    return URL(proxy) if proxy else None


class AiohttpEndpoint:
    def __init__(
        self, client: AiohttpClient, url: str, headers: dict[str, str], timeout: aiohttp.ClientTimeout
    ) -> None:
        self._client = client
        self._url = URL(url)
        self._headers = CIMultiDict(headers)
        self._timeout = timeout
        self._proxy = env_proxy(self._url)

    async def post(self, content: bytes, headers: list[tuple[str, str]]) -> AiohttpResponse:
        sent = self._headers.copy()
        sent.extend(headers)
        with mapped_errors():
            response = await self._client.session().request(
                "POST",
                self._url,
                headers=sent,
                data=content,
                allow_redirects=False,
                auto_decompress=False,  # inflated in bounded steps by app/moa_gateway/upstream/body.py
                timeout=self._timeout,
                proxy=self._proxy,  # its credentials, if any, become Proxy-Authorization
            )
        return AiohttpResponse(response)


class AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status

    def header(self, name: str) -> str | None:
        return self._response.headers.get(name)

    def encodings(self) -> list[str]:
        return content_codings(self._response.headers.getall("content-encoding", []))

    def aiter_raw(self) -> AsyncIterator[bytes]:
        return _mapped_chunks(self._response.content.iter_chunked(_CHUNK_BYTES))

    def aiter_decoded(self) -> AsyncIterator[bytes]:
        return self.aiter_raw()  # nothing decoded: an encoding the gateway does not inflate stays as sent

    async def aclose(self) -> None:
        self._response.release()  # back to the pool if read to its end, else the connection is closed
        with mapped_errors():
            await self._response.wait_for_close()


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    """aiohttp's exceptions raised as the client protocol's (upstream/client.py), from the original."""
    try:
        yield
    except aiohttp.ClientHttpProxyError as exc:  # the proxy refused the tunnel: no connection at all
        raise ConnectError(exc.message) from exc
    except aiohttp.ClientResponseError as exc:  # aiohttp's error for any unparsable response head
        raise ProtocolError(exc.message) from exc
    except aiohttp.ClientConnectionError as exc:  # refused, reset, closed; the connect timeout too
        raise ConnectError(str(exc)) from exc
    except aiohttp.ClientError as exc:  # a bad URL, a payload error
        raise ClientError(str(exc)) from exc


async def _mapped_chunks(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    with mapped_errors():
        async for chunk in chunks:
            yield chunk
