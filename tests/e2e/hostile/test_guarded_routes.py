"""Every POST route under /v1/ is guarded, read off the app's routes (not a list kept by hand): a body over
the limit is a 413 before it is read, a draining gateway answers 503, the concurrency cap holds, a client
that hangs up cancels the request (499, upstream call cancelled), and each request is counted. Over raw
sockets against the production server setup (app.server)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import Request
from fastapi.responses import Response

from moa_gateway.main import create_app
from moa_gateway.settings import Settings
from tests.support.configs import simulated_config
from tests.support.metrics import Scrape, scrape_when
from tests.support.servers import ServerThread

EMBED = b'{"model": "alpha", "input": "a cat"}'
HUGE = 48 * 2**20  # the hostile review's embeddings body


def post_paths() -> list[str]:
    """Each POST path under /v1/ of the gateway as built (from its OpenAPI schema), parameters filled in."""
    schema = create_app(Settings(), simulated_config()).openapi()
    paths = [path for path, operations in schema["paths"].items() if "post" in operations]
    return sorted(re.sub(r"\{[^}]+\}", "x", path) for path in paths if path.startswith("/v1/"))


GUARDED = post_paths()


def serve(app: Any = None, **overrides: Any) -> ServerThread:
    settings = Settings(**{"body_timeout_s": 5, **overrides})
    return ServerThread(app or create_app(settings, simulated_config()), settings=settings)


def post_head(path: str, content_length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {content_length}\r\n\r\n"
    ).encode()


def answer_to_head(port: int, path: str, content_length: int) -> tuple[int, dict[str, Any]]:
    """Send only the head of a POST declaring `content_length` bytes: the status and error body the
    server answers without waiting for the body."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(post_head(path, content_length))
        sock.settimeout(3)
        received = b""
        try:
            while b"\r\n\r\n" not in received:
                received += sock.recv(65536)
            head, _, body = received.partition(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
            while len(body) < length:
                body += sock.recv(65536)
        except TimeoutError:
            pytest.fail(
                f"{path}: no answer to a head declaring {content_length} bytes: it waits for the body"
            )
    return int(head.split()[1]), orjson.loads(body)


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServerThread]:
    with serve() as server:
        yield server


@pytest.mark.parametrize("path", [*GUARDED, "/v1/no-such-endpoint"])
def test_a_48_mib_body_gets_413_before_it_is_sent(gateway: ServerThread, path: str) -> None:
    status, body = answer_to_head(gateway.port, path, HUGE)

    assert status == 413
    assert body["error"]["code"] == "request_too_large"
    assert body["error"]["type"] == "invalid_request_error"


def test_an_embeddings_body_over_the_limit_without_a_length_is_413() -> None:
    big = b'{"model": "alpha", "input": "' + b"x" * 100_000 + b'"}'
    with serve(max_body_bytes=4096) as gateway:
        chunked = httpx.post(
            f"{gateway.url}/v1/embeddings",
            content=iter([big[:2000], big[2000:]]),  # no content-length: chunked
            headers={"content-type": "application/json"},
        )

    assert chunked.status_code == 413
    assert chunked.json()["error"]["code"] == "request_too_large"


def test_while_draining_every_guarded_route_answers_503() -> None:
    app = create_app(Settings(), simulated_config())
    with serve(app) as gateway:
        app.state.lifecycle.draining = True
        answers = {path: httpx.post(f"{gateway.url}{path}", content=EMBED) for path in GUARDED}

    assert {"/v1/chat/completions", "/v1/responses", "/v1/completions", "/v1/embeddings"} <= set(answers)
    for path, answer in answers.items():
        assert answer.status_code == 503, path
        assert answer.json()["error"]["code"] == "shutting_down", path
        assert answer.headers["retry-after"] == "1", path


async def test_embeddings_above_the_concurrency_cap_get_429() -> None:
    app = create_app(Settings(max_concurrent_requests=1), simulated_config(ttft_ms=400))
    with serve(app) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            slow = asyncio.create_task(client.post("/v1/embeddings", content=EMBED))
            await asyncio.sleep(0.15)  # the first request is in flight
            refused = await client.post("/v1/embeddings", content=EMBED)
            first = await slow

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "concurrency_limit"
    assert first.status_code == 200


def test_embeddings_requests_are_counted_by_model_and_status(gateway: ServerThread) -> None:
    before = Scrape(httpx.get(f"{gateway.url}/metrics").text)
    ok = httpx.post(f"{gateway.url}/v1/embeddings", content=EMBED)
    unknown = httpx.post(f"{gateway.url}/v1/embeddings", content=b'{"model": "nope", "input": "x"}')
    after = Scrape(httpx.get(f"{gateway.url}/metrics").text)

    assert (ok.status_code, unknown.status_code) == (200, 404)
    counted = {
        (model, status): after.value("moa_requests_total", model=model, status=status)
        - before.value("moa_requests_total", model=model, status=status)
        for model, status in [("alpha", "200"), ("unknown", "404")]
    }
    assert counted == {("alpha", "200"): 1, ("unknown", "404"): 1}, "the client's model id is no label"


def test_an_embeddings_client_that_hangs_up_cancels_its_upstream_call_and_is_recorded_as_499() -> None:
    app = create_app(Settings(), simulated_config(ttft_ms=30_000))  # only the client leaving ends it
    with serve(app) as gateway:
        with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
            sock.sendall(post_head("/v1/embeddings", len(EMBED)) + EMBED)
            scrape_when(gateway.url, lambda s: s.value("moa_requests_in_flight") == 1)
        scrape = scrape_when(gateway.url, lambda s: s.value("moa_requests_in_flight") == 0)

    assert scrape.value("moa_requests_total", status="499") == 1
    assert scrape.value("moa_requests_total") == 1
    cancelled = scrape.value(
        "moa_upstream_request_duration_seconds_count", model="alpha", role="embedding", outcome="cancelled"
    )
    assert cancelled == 1, "the upstream call ended with its client, not 30 s later"


def test_a_post_route_added_to_the_app_is_guarded_too() -> None:
    """A route the composition has never heard of gets the guards: the set is read off the routes."""
    app = create_app(Settings(max_body_bytes=4096), simulated_config())

    @app.post("/v1/new-endpoint")
    async def new_endpoint(request: Request) -> Response:
        return Response(await request.body(), media_type="application/json")

    with serve(app) as gateway:
        status, body = answer_to_head(gateway.port, "/v1/new-endpoint", HUGE)
        served = httpx.post(f"{gateway.url}/v1/new-endpoint", content=EMBED)
        scrape = Scrape(httpx.get(f"{gateway.url}/metrics").text)
        app.state.lifecycle.draining = True
        draining = httpx.post(f"{gateway.url}/v1/new-endpoint", content=EMBED)

    assert (status, body["error"]["code"]) == (413, "request_too_large")
    assert served.status_code == 200 and served.content == EMBED
    assert scrape.value("moa_requests_total", status="200") == 1
    assert draining.status_code == 503
