"""Bounded reads of upstream answers: SSE lines split on every line end, however the bytes arrive;
lines, events, streams and bodies cut off at their limits, counted after decompression."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from moa_gateway.upstream.body import (
    AnswerTooLargeError,
    BodyDecodingError,
    UpstreamLimits,
    _lines,
    decoded,
    read_body,
    read_prefix,
    sse_events,
)
from moa_gateway.upstream.httpx_client import HttpxResponse

LIMITS = UpstreamLimits(max_body_bytes=1024, max_event_bytes=64, max_stream_bytes=4096)


async def pieces_of(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def lines_of(*pieces: bytes, limit: int = 64) -> list[bytes]:
    return [line async for line in _lines(pieces_of(*pieces), limit)]


@pytest.mark.parametrize(
    "pieces",
    [
        [b"a\nb\r\nc\rd\n"],
        [b"a\nb\r", b"\nc\rd\n"],  # a CRLF split between two pieces is one line end
        [b"a", b"\n", b"b\r\n", b"c", b"\r", b"d", b"\n"],
        [b"a\nb\r\nc\rd"],  # the last line needs no end
    ],
)
async def test_lines_split_on_crlf_cr_and_lf_wherever_the_pieces_break(pieces: list[bytes]) -> None:
    assert await lines_of(*pieces) == [b"a", b"b", b"c", b"d"]


async def test_a_line_over_the_limit_fails_before_it_is_all_buffered() -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 16
            yield b"x" * 16

    with pytest.raises(AnswerTooLargeError, match="a stream line is over the limit of 64 bytes"):
        async for _ in _lines(endless(), 64):
            pass
    assert sent <= 80


async def test_a_whole_line_over_the_limit_fails_too() -> None:
    with pytest.raises(AnswerTooLargeError, match="a stream line"):
        await lines_of(b"x" * 100 + b"\n")


class Arriving(httpx.AsyncByteStream):
    """A body as it comes off the network: in reads of `step` bytes, not yet read."""

    def __init__(self, content: bytes, step: int = 65536) -> None:
        self._content, self._step = content, step

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._content), self._step):
            yield self._content[start : start + self._step]


def arriving(content: bytes, **headers: str) -> HttpxResponse:
    """An answer as the httpx client hands it over, its body not yet read."""
    return HttpxResponse(httpx.Response(200, stream=Arriving(content), headers=headers))


def sse_response(content: bytes, **headers: str) -> HttpxResponse:
    return arriving(content, **{"content-type": "text/event-stream", **headers})


async def events_of(response: HttpxResponse) -> list[str]:
    return [event.data async for event in sse_events(response, LIMITS)]


async def test_events_are_assembled_by_httpx_sse() -> None:
    content = b": comment\n\ndata: a\ndata: b\n\nevent: x\ndata: c\r\n\r\ndata: [DONE]\n\n"

    assert await events_of(sse_response(content)) == ["a\nb", "c", "[DONE]"]


async def test_many_short_lines_make_one_event_over_the_limit() -> None:
    content = b"data: 0123456789\n" * 10 + b"\n"

    with pytest.raises(AnswerTooLargeError, match="a stream event is over the limit of 64 bytes"):
        await events_of(sse_response(content))


async def test_a_stream_over_its_limit_fails_even_in_small_events() -> None:
    content = b"data: 0123456789\n\n" * 300

    with pytest.raises(AnswerTooLargeError, match="the stream is over the limit of 4096 bytes"):
        await events_of(sse_response(content))


async def test_a_gzip_bomb_is_counted_decompressed() -> None:
    bomb = gzip.compress(b"data: x\n\n" * 100_000)
    assert len(bomb) < LIMITS.max_stream_bytes

    with pytest.raises(AnswerTooLargeError, match="the stream is over the limit"):
        await events_of(sse_response(bomb, **{"content-encoding": "gzip"}))


async def test_a_body_is_read_to_its_limit_decompressed() -> None:
    bomb = gzip.compress(b" " * 1_000_000)
    response = arriving(bomb, **{"content-encoding": "gzip"})

    with pytest.raises(AnswerTooLargeError, match="the answer is over the limit of 1024 bytes"):
        await read_body(response, LIMITS.max_body_bytes)


async def test_an_error_body_is_read_only_in_part() -> None:
    response = HttpxResponse(httpx.Response(500, content=b"e" * 10_000))

    assert await read_prefix(response, 100) == b"e" * 100


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send it
    ],
)
async def test_a_compressed_body_is_inflated_in_bounded_steps(
    encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    body = bytes(10_000_000)  # 64 KiB of it compressed is over 60 MB decompressed
    response = arriving(compress(body), **{"content-encoding": encoding})

    sizes = [len(piece) async for piece in decoded(response)]

    assert sum(sizes) == len(body) and max(sizes) <= 64 * 1024


async def test_a_body_that_is_not_what_its_encoding_says_is_a_decoding_error() -> None:
    response = arriving(b"not gzip", **{"content-encoding": "gzip"})

    with pytest.raises(BodyDecodingError):
        await read_body(response, 1024)
