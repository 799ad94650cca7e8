"""The one shared HTTP client every upstream call goes through, and what a provider sees of it: an
endpoint to POST to, and an answer's status, headers and bytes.

Three implementations: the gateway's own connections parsed by httptools (the default), aiohttp's pool
called directly (`MOA_UPSTREAM_TRANSPORT=aiohttp`, and for proxied URLs), and httpx's
(`MOA_UPSTREAM_TRANSPORT=httpx`, and in-memory `httpx.MockTransport` clients in unit tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from moa_gateway.settings import Settings

KEEPALIVE_EXPIRY_S = 30


class ClientError(Exception):
    """A transport failure of an upstream client. Each client adapter maps its library's exceptions to
    these (raised `from` the original), so providers never see aiohttp, httpx or h11 errors:

        ClientError                 anything else that went wrong on the wire (a bad URL, a body cut short)
          ConnectError              no connection, or it was refused, reset or closed; a proxy refusing the
                                    tunnel; a connect timeout
          ProtocolError             the peer broke HTTP in the response head (a bad status line, an
                                    oversized or malformed header)
          DecodingError             a body whose content-encoding cannot be decoded
          ReadTimeout               the client's own read deadline passed
    """


class ConnectError(ClientError):
    pass


class ProtocolError(ClientError):
    pass


class DecodingError(ClientError):
    pass


class ReadTimeout(ClientError):
    pass


class UpstreamResponse(Protocol):
    """An upstream's answer whose head has arrived; its body is read through one of the iterators."""

    @property
    def status_code(self) -> int: ...

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), if sent."""
        ...

    def encodings(self) -> list[str]:
        """The content codings, lower case, still applied to what `aiter_raw` yields (its
        `content-encoding`, but none where the client has already decoded the body)."""
        ...

    def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it came (still compressed, if it was)."""
        ...

    def aiter_decoded(self) -> AsyncIterator[bytes]:
        """The body decoded as far as the client library can (for encodings the gateway does not
        inflate itself)."""
        ...

    async def aclose(self) -> None:
        """Give the connection back (or close it, if the body was not read to its end)."""
        ...


class Endpoint(Protocol):
    """One upstream URL with its provider's headers, prepared once."""

    async def post(self, content: bytes, headers: list[tuple[str, str]]) -> UpstreamResponse:
        """POST `content` with `headers` added to the endpoint's; returns once the head has arrived."""
        ...


class UpstreamClient(Protocol):
    def endpoint(self, url: str, headers: dict[str, str], *, connect_s: float, read_s: float) -> Endpoint:
        """`url` (no credentials in it) with `headers`, connections made within `connect_s`; `read_s`
        bounds each socket read where the client needs one (the callers' deadlines bound the call)."""
        ...

    @property
    def is_closed(self) -> bool: ...

    async def aclose(self) -> None: ...


def content_codings(values: list[str]) -> list[str]:
    """The codings named by `content-encoding` header values, lower case, without `identity`."""
    codings = (coding.strip().lower() for value in values for coding in value.split(","))
    return [coding for coding in codings if coding and coding != "identity"]


def upstream_client(settings: Settings, max_connections: int) -> UpstreamClient:
    """The client for `settings.upstream_transport`; its own connection limit is `max_connections`, the
    pool's total (app/moa_gateway/upstream/pool.py), which the gateway already holds calls to: the client's limit
    matches it, so no call ever queues inside the client, unmeasured."""
    if settings.upstream_transport == "httpx":
        from moa_gateway.upstream.httpx_client import HttpxClient, pooled_httpx_client

        return HttpxClient(pooled_httpx_client(max_connections))
    if settings.upstream_transport == "aiohttp":
        from moa_gateway.upstream.aiohttp_client import AiohttpClient

        return AiohttpClient(max_connections)
    from moa_gateway.upstream.httptools_client import HttptoolsClient

    return HttptoolsClient(max_connections)
