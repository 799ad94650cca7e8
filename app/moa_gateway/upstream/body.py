"""Bounded reads of upstream answers: a whole body, the start of an error body, and the events of a
stream, each counted in decoded bytes as they arrive, so neither a huge nor a compressed answer (a gzip
bomb) can take more memory than its limit."""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from httpx_sse import ServerSentEvent
from httpx_sse._decoders import SSEDecoder  # the event assembler of the aiter_sse we replace

from moa_gateway.settings import Settings
from moa_gateway.upstream.client import UpstreamResponse

_MIB = 1024 * 1024
_LINE_END = re.compile(rb"\r\n|\r|\n")  # the SSE line ends; never inside a UTF-8 character
_ZLIB_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}
_INFLATE_STEP = 64 * 1024


@dataclass(frozen=True)
class UpstreamLimits:
    """Largest upstream answers, decompressed. Over one, the call fails as a `bad_response`."""

    max_body_bytes: int = 8 * _MIB  # a non-streamed answer
    max_event_bytes: int = _MIB  # one line, or one event, of a stream
    max_stream_bytes: int = 16 * _MIB  # a whole streamed answer
    max_error_body_bytes: int = 64 * 1024  # read of a 4xx/5xx body; the rest is ignored

    @classmethod
    def from_settings(cls, settings: Settings) -> UpstreamLimits:
        return cls(
            max_body_bytes=settings.upstream_max_body_bytes,
            max_event_bytes=settings.upstream_max_event_bytes,
            max_stream_bytes=settings.upstream_max_stream_bytes,
        )


class AnswerTooLargeError(Exception):
    """An upstream answer went over one of the UpstreamLimits; the message says which."""


class BodyDecodingError(Exception):
    """A compressed upstream answer could not be inflated."""


async def read_body(response: UpstreamResponse, max_bytes: int) -> bytes:
    """The whole decoded body, failing as soon as it passes `max_bytes`."""
    body = bytearray()
    async for piece in decoded(response):
        body += piece
        if len(body) > max_bytes:
            raise AnswerTooLargeError(
                f"the answer is over the limit of {max_bytes} bytes (MOA_UPSTREAM_MAX_BODY_BYTES)"
            )
    return bytes(body)


async def read_prefix(response: UpstreamResponse, max_bytes: int) -> bytes:
    """At most the first `max_bytes` of the decoded body; the rest is not read."""
    body = bytearray()
    async for piece in decoded(response):
        body += piece[: max_bytes - len(body)]
        if len(body) >= max_bytes:
            break
    return bytes(body)


async def decoded(response: UpstreamResponse) -> AsyncIterator[bytes]:
    """The body, decompressed at most `_INFLATE_STEP` bytes at a time.

    A client library's decoders inflate each network read whole: 64 KiB of a gzip bomb is 64 MiB at
    once. gzip and deflate, the encodings the gateway asks for, are inflated here in bounded steps
    instead; any other encoding is left to the client library (httpx decodes some with optional
    libraries; aiohttp's are left as sent, and fail as JSON).
    """
    codings = response.encodings()
    if not codings:
        async for piece in response.aiter_raw():
            yield piece
        return
    if len(codings) != 1 or codings[0] not in _ZLIB_WBITS:
        async for piece in response.aiter_decoded():
            yield piece
        return
    fallback = codings[0] == "deflate"  # zlib-wrapped, as the standard says, or raw from some servers
    inflater = zlib.decompressobj(_ZLIB_WBITS[codings[0]])
    async for data in response.aiter_raw():
        while data:
            try:
                piece = inflater.decompress(data, _INFLATE_STEP)
            except zlib.error as exc:
                if not fallback:
                    raise BodyDecodingError(str(exc)) from exc
                fallback, inflater = False, zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            fallback = False
            data = inflater.unconsumed_tail
            if piece:
                yield piece
    try:
        rest = inflater.flush()
    except zlib.error as exc:
        raise BodyDecodingError(str(exc)) from exc
    if rest:
        yield rest


async def sse_events(response: UpstreamResponse, limits: UpstreamLimits) -> AsyncIterator[ServerSentEvent]:
    """The server-sent events of `response`, within the event and whole-stream limits."""
    decoder = SSEDecoder()
    event_bytes = 0
    async for line in _lines(_counted(decoded(response), limits.max_stream_bytes), limits.max_event_bytes):
        # Many short lines with no blank line between them make one event: its size is their sum.
        event_bytes += len(line)
        if event_bytes > limits.max_event_bytes:
            raise AnswerTooLargeError(
                f"a stream event is over the limit of {limits.max_event_bytes} bytes (MOA_UPSTREAM_MAX_EVENT_BYTES)"
            )
        if not line:
            event_bytes = 0
        event = decoder.decode(line.decode("utf-8", "replace"))
        if event is not None:
            yield event


async def _counted(pieces: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    total = 0
    async for piece in pieces:
        total += len(piece)
        if total > max_bytes:
            raise AnswerTooLargeError(
                f"the stream is over the limit of {max_bytes} bytes (MOA_UPSTREAM_MAX_STREAM_BYTES)"
            )
        yield piece


async def _lines(pieces: AsyncIterator[bytes], max_line_bytes: int) -> AsyncIterator[bytes]:
    """The lines of a byte stream, split on CRLF, CR or LF as SSE requires, each at most `max_line_bytes`.

    Unlike httpx's aiter_lines, an unterminated line is not buffered without bound.
    """
    buffer = bytearray()
    scanned = 0  # bytes at the start of `buffer` known to hold no line end
    async for piece in pieces:
        buffer += piece
        start = 0
        while (match := _LINE_END.search(buffer, max(start, scanned))) is not None:
            if match.end() == len(buffer) and buffer.endswith(b"\r"):
                break  # a lone CR at the end may be the first half of a CRLF: wait for the next piece
            if match.start() - start > max_line_bytes:
                raise _line_too_long(max_line_bytes)
            yield bytes(buffer[start : match.start()])
            start = match.end()
        del buffer[:start]
        if len(buffer) > max_line_bytes:
            raise _line_too_long(max_line_bytes)
        scanned = max(len(buffer) - 1, 0)
    if buffer:
        yield bytes(buffer.removesuffix(b"\r"))


def _line_too_long(max_line_bytes: int) -> AnswerTooLargeError:
    return AnswerTooLargeError(
        f"a stream line is over the limit of {max_line_bytes} bytes (MOA_UPSTREAM_MAX_EVENT_BYTES)"
    )
