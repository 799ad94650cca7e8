"""`POST /v1/responses` against hostile input, over real HTTP: a request that would freeze the worker
(health checks keep answering within a second while it is served) and malformed shapes (a 400 in
OpenAI's error shape naming the field, never a 500)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.e2e.responses.conftest import Gateway
from tests.support.health import health_while

HEALTH_LIMIT_S = 1.0


def many_tools(count: int) -> list[dict[str, Any]]:
    return [{"type": "function", "name": f"tool_{i}", "parameters": {"type": "object"}} for i in range(count)]


def test_10k_tools_do_not_freeze_the_worker(gateway: Gateway) -> None:
    """A count of each name froze the worker 3 s here (45 s for 30k tools). What is left is linear, and
    most of it the chat request's own validation, as on /v1/chat/completions."""
    body = {"model": "alpha", "input": "Use a tool.", "tools": many_tools(10_000)}
    request = orjson.dumps(body)  # before the probes: the test's thread shares the gateway's GIL
    response, took = health_while(gateway.url, lambda: post(gateway.url, request))

    assert response.status_code == 200, response.text
    assert [item["type"] for item in response.json()["output"]] == ["function_call"]
    assert took, "no health check ran while the request was served"
    assert max(took) < HEALTH_LIMIT_S, f"/healthz took up to {max(took):.2f}s"


def test_a_duplicate_among_10k_tools_is_a_400_without_freezing_the_worker(gateway: Gateway) -> None:
    tools = many_tools(10_000)
    tools[-1]["name"] = "tool_7"
    body = {"model": "alpha", "input": "x", "tools": tools}
    request = orjson.dumps(body)  # before the probes: the test's thread shares the gateway's GIL
    response, took = health_while(gateway.url, lambda: post(gateway.url, request))

    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "tools: more than one function is named 'tool_7'",
        "type": "invalid_request_error",
        "param": "tools",
        "code": None,
    }
    assert took and max(took) < HEALTH_LIMIT_S, f"/healthz took up to {max(took):.2f}s"


def post(url: str, content: bytes) -> httpx.Response:
    return httpx.post(f"{url}/v1/responses", content=content, timeout=120)
