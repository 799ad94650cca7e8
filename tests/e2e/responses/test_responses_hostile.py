"""`POST /v1/responses` against hostile input, over real HTTP: a request that would freeze the worker
(health checks keep answering within a second while it is served) and malformed shapes (a 400 in
OpenAI's error shape naming the field, never a 500)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from moa_gateway.config import parse_config
from moa_gateway.main import create_app
from moa_gateway.settings import Settings
from tests.e2e.responses.conftest import responses_config
from tests.support.recording import Recorder
from tests.support.servers import ServerThread

HEALTH_LIMIT_S = 1.0


def health_while(url: str, action: Callable[[], httpx.Response]) -> tuple[httpx.Response, list[float]]:
    """Runs `action` in a thread and probes `/healthz` until it ends: its answer, and how long each probe
    took (a probe that got no answer within the limit counts as the limit)."""
    done: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: done.append(action()), daemon=True)
    worker.start()
    took: list[float] = []
    with httpx.Client(timeout=HEALTH_LIMIT_S) as client:
        while worker.is_alive():
            start = time.monotonic()
            try:
                assert client.get(f"{url}/healthz").status_code == 200
                took.append(time.monotonic() - start)
            except httpx.TimeoutException:
                took.append(HEALTH_LIMIT_S)
            time.sleep(0.05)
    worker.join()
    return done[0], took


def many_tools(count: int) -> list[dict[str, Any]]:
    return [{"type": "function", "name": f"tool_{i}", "parameters": {"type": "object"}} for i in range(count)]


@pytest.fixture(scope="module")
def via_httpx(upstream: tuple[str, Recorder]) -> Iterator[str]:
    """A gateway calling upstream through httpx: aiohttp warns (ResourceWarning, an error under pytest)
    when it sends a body over 1 MiB, as 30k tools are."""
    config = parse_config(responses_config(upstream[0]), "via-httpx")
    with ServerThread(create_app(Settings(upstream_transport="httpx"), config)) as gateway:
        yield gateway.url


def test_10k_tools_do_not_freeze_the_worker(via_httpx: str) -> None:
    """A count of each name froze the worker 3 s here (45 s for 30k tools). What is left is linear, and
    most of it the chat request's own validation, as on /v1/chat/completions."""
    body = {"model": "alpha", "input": "Use a tool.", "tools": many_tools(10_000)}
    response, took = health_while(via_httpx, lambda: post(via_httpx, body))

    assert response.status_code == 200, response.text
    assert [item["type"] for item in response.json()["output"]] == ["function_call"]
    assert took, "no health check ran while the request was served"
    assert max(took) < HEALTH_LIMIT_S, f"/healthz took up to {max(took):.2f}s"


def test_a_duplicate_among_10k_tools_is_a_400_without_freezing_the_worker(via_httpx: str) -> None:
    tools = many_tools(10_000)
    tools[-1]["name"] = "tool_7"
    body = {"model": "alpha", "input": "x", "tools": tools}
    response, took = health_while(via_httpx, lambda: post(via_httpx, body))

    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "tools: more than one function is named 'tool_7'",
        "type": "invalid_request_error",
        "param": "tools",
        "code": None,
    }
    assert took and max(took) < HEALTH_LIMIT_S, f"/healthz took up to {max(took):.2f}s"


def post(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/v1/responses", json=body, timeout=120)
