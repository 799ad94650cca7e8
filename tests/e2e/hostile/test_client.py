"""A hostile client, over raw sockets against the production server setup (app.server): slow or huge
requests cannot take the gateway's admission slots or memory, the API docs need a key when keys are on,
and a client that hangs up is recorded as 499."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from moa_gateway.settings import Settings
from tests.support.configs import simulated_config
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape, scrape_when
from tests.support.servers import ServerThread

CHAT = b'{"model": "moa-1", "messages": [{"role": "user", "content": "hi"}]}'
TIMEOUT_S = 0.5  # header and body deadlines of these servers
MARGIN_S = 1.5  # generous: "closed within the deadline" must not depend on the machine's speed


def serve(**overrides: Any) -> ServerThread:
    settings = Settings(**{"header_timeout_s": TIMEOUT_S, "body_timeout_s": TIMEOUT_S, **overrides})
    return serve_gateway(simulated_config(), settings, production_server=True)


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServerThread]:
    with serve(max_header_bytes=8192) as server:
        yield server


def chat_head(content_length: int, extra: bytes = b"") -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n%s\r\n" % (content_length, extra)
    )


def read_until_closed(sock: socket.socket, timeout_s: float = TIMEOUT_S + MARGIN_S) -> bytes:
    """Everything the server sends until it closes the connection; fails if it does not close in time."""
    sock.settimeout(timeout_s)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {timeout_s} s")
    except ConnectionResetError:
        pass  # closed with bytes of ours unread: still closed
    return received


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


async def dribble(port: int, first: bytes, every_s: float) -> tuple[bytes, float]:
    """Send `first`, then one byte every `every_s`, until the server closes the connection: what it
    answered, and when it closed, counted from the end of `first`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(first)
    await writer.drain()
    sent_first = time.monotonic()

    async def trickle() -> None:
        try:
            while True:
                await asyncio.sleep(every_s)
                writer.write(b"a")  # inside a header name or a JSON string: never completes anything
                await writer.drain()
        except OSError:
            pass

    trickling = asyncio.create_task(trickle())
    try:
        answer = await asyncio.wait_for(reader.read(), TIMEOUT_S + MARGIN_S)
    except ConnectionResetError:
        answer = b""
    except TimeoutError:
        pytest.fail(f"the connection was still open {TIMEOUT_S + MARGIN_S} s after its first bytes")
    finally:
        trickling.cancel()
        writer.close()
    return answer, time.monotonic() - sent_first


async def test_dribbled_bodies_hold_no_slot_and_get_408_then_the_connection_closes() -> None:
    with serve(max_concurrent_requests=4) as gateway:
        first = chat_head(1000) + b'{"model": "moa-1", "messages": [{"role": "user", "content": "'
        dribblers = [asyncio.create_task(dribble(gateway.port, first, every_s=0.1)) for _ in range(8)]
        await asyncio.sleep(0.2)  # eight bodies on their way, twice the concurrency cap
        async with httpx.AsyncClient(base_url=gateway.url, timeout=5) as client:
            meanwhile = await client.post(
                "/v1/chat/completions", content=CHAT, headers={"content-type": "application/json"}
            )
            answers = await asyncio.gather(*dribblers)
            scrape = Scrape((await client.get("/metrics")).text)

    assert meanwhile.status_code == 200, "a dribbled body takes no concurrency slot"
    for answer, closed_after_s in answers:
        status, headers, body = parse(answer)
        assert status == 408
        assert headers["connection"] == "close" and headers["x-should-retry"] == "false"
        assert len(headers["x-request-id"]) >= 8, "like every error response"
        assert orjson.loads(body) == {
            "error": {
                "message": "The request body did not arrive in time",
                "type": "invalid_request_error",
                "param": None,
                "code": "request_timeout",
            }
        }
        assert TIMEOUT_S * 0.9 <= closed_after_s <= TIMEOUT_S + MARGIN_S, "bytes kept coming: no matter"
    assert scrape.value("moa_requests_total", status="408") == 8
    assert scrape.value("moa_requests_total", status="200") == 1


def test_a_slow_body_within_the_deadline_is_served(gateway: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(chat_head(len(CHAT), b"connection: close\r\n") + CHAT[:10])
        time.sleep(TIMEOUT_S / 2)
        sock.sendall(CHAT[10:])
        status, _, body = parse(read_until_closed(sock))

    assert status == 200 and orjson.loads(body)["object"] == "chat.completion"


@pytest.mark.parametrize(
    "first",
    [b"", b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n", b"GET /he"],
    ids=["nothing", "half", "url"],
)
def test_a_silent_connection_or_a_half_head_is_closed_after_the_head_timeout(
    gateway: ServerThread, first: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        opened = time.monotonic()
        sock.sendall(first)
        answer = read_until_closed(sock)
        closed_after_s = time.monotonic() - opened

    assert answer == b"", "nothing to answer: the connection is just closed"
    assert TIMEOUT_S * 0.9 <= closed_after_s <= TIMEOUT_S + MARGIN_S


async def test_a_head_dribbled_byte_by_byte_is_closed_at_the_head_timeout(gateway: ServerThread) -> None:
    answer, closed_after_s = await dribble(gateway.port, b"GET /healthz HTTP/1.1\r\nx-", every_s=0.05)

    assert answer == b""
    assert TIMEOUT_S * 0.9 <= closed_after_s <= TIMEOUT_S + MARGIN_S, "each byte does not extend it"


def test_an_idle_keep_alive_connection_outlives_the_head_timeout(gateway: ServerThread) -> None:
    with httpx.Client(base_url=gateway.url, timeout=5) as client:
        first = client.get("/healthz")
        first_from = first.extensions["network_stream"].get_extra_info("client_addr")
        time.sleep(TIMEOUT_S * 2)  # idle between requests: MOA_KEEP_ALIVE_S, not the head timeout
        second = client.get("/healthz")
        second_from = second.extensions["network_stream"].get_extra_info("client_addr")

    assert (first.status_code, second.status_code) == (200, 200)
    assert first_from == second_from, "the same connection served both"


def head_of(size: int) -> bytes:
    """A GET /healthz head of exactly `size` bytes, request line and final blank line included."""
    start = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nx-pad: "
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


def test_a_head_over_the_limit_gets_431_and_one_at_the_limit_is_served(gateway: ServerThread) -> None:
    answers = {}
    for size in (8192, 8193):
        with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
            sock.sendall(head_of(size))
            answers[size] = parse(read_until_closed(sock))

    assert answers[8192][0] == 200
    status, headers, body = answers[8193]
    assert status == 431
    assert headers["connection"] == "close" and headers["x-should-retry"] == "false"
    assert len(headers["x-request-id"]) >= 8, "like every error response"
    assert orjson.loads(body)["error"]["code"] == "request_header_fields_too_large"
    assert orjson.loads(body)["error"]["type"] == "invalid_request_error"


def test_a_64_mib_header_is_refused_without_being_read(gateway: ServerThread) -> None:
    chunk = b"a" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.settimeout(10)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: ")
            for _ in range(1024):
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = read_until_closed(sock)
        except OSError:
            answer = b""

    assert sent < 16 * 2**20, f"the server read {sent / 2**20:.0f} MiB of a header limited to 8 KiB"
    assert answer == b"" or parse(answer)[0] == 431


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_with_keys_on_the_api_docs_need_a_key(path: str) -> None:
    with serve(api_keys=SecretStr("doc-key")) as keyed, serve() as open_gateway:
        anonymous = httpx.get(f"{keyed.url}{path}")
        with_key = httpx.get(f"{keyed.url}{path}", headers={"authorization": "Bearer doc-key"})
        keyless = httpx.get(f"{open_gateway.url}{path}")
        probes = [httpx.get(f"{keyed.url}{probe}").status_code for probe in ("/healthz", "/metrics")]

    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "invalid_api_key"
    assert (with_key.status_code, keyless.status_code) == (200, 200)
    assert "moa-gateway" in with_key.text, "the docs themselves, once the key is given"
    assert probes == [200, 200]


def stream_request() -> bytes:
    body = CHAT[:-1] + b', "stream": true}'
    return chat_head(len(body)) + body


@pytest.mark.parametrize(
    ("request_bytes", "wait_for"),
    [
        (chat_head(len(CHAT)) + CHAT, None),
        (stream_request(), b"HTTP/1.1 200 OK"),
        (chat_head(len(CHAT)) + CHAT[:10], None),
    ],
    ids=["json", "mid-stream", "mid-body"],
)
def test_a_client_that_hangs_up_is_recorded_as_499(
    caplog: pytest.LogCaptureFixture, request_bytes: bytes, wait_for: bytes | None
) -> None:
    # Proposers take 30 s: only the client leaving ends these requests.
    config = simulated_config(ttft_ms=30_000)
    settings = Settings(body_timeout_s=5, sse_keepalive_s=0.05)
    caplog.set_level(logging.INFO, logger="moa_gateway.api.middleware.request_metrics")
    with serve_gateway(config, settings, production_server=True) as gateway:
        with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
            sock.sendall(request_bytes)
            started = scrape_when(gateway.url, lambda s: s.value("moa_requests_in_flight") == 1)
            sock.settimeout(5)
            received = b""
            while wait_for is not None and wait_for not in received:
                received += sock.recv(65536)
        scrape = scrape_when(gateway.url, lambda s: s.value("moa_requests_in_flight") == 0)

    assert started.value("moa_requests_total") == 0
    assert scrape.value("moa_requests_total", status="499") == 1
    assert scrape.value("moa_requests_total") == 1, "not also counted as a 500, nor as its 200"
    logged = [getattr(r, "fields", {}) for r in caplog.records]
    assert [f["status"] for f in logged if f.get("event") == "request"] == [499]
