"""`POST /v1/responses` in front of a scripted raw upstream (tests/e2e/hostile/raw_upstream.py), over real
HTTP: an answer of 10k streamed tool calls, and malformed tool calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from moa_gateway.config import parse_config
from moa_gateway.main import create_app
from moa_gateway.settings import Settings
from tests.e2e.hostile.raw_upstream import ROLE, SSE_HEAD, RawUpstream, chunk, frame, raw
from tests.support.health import health_while
from tests.support.servers import ServerThread

HEALTH_LIMIT_S = 1.0
MANY_CALLS = 10_000
TOOLS: Any = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]


def call_chunk(index: int) -> bytes:
    function = {"name": "lookup", "arguments": f'{{"i": {index}}}'}
    call = {"index": index, "id": f"call_{index}", "type": "function", "function": function}
    return frame(chunk({"tool_calls": [call]}))


SCRIPTS = {
    "many-calls": raw(
        SSE_HEAD
        + ROLE
        + b"".join(call_chunk(i) for i in range(MANY_CALLS))
        + frame(chunk({}, "tool_calls"))
        + frame(b"[DONE]")
    ),
}


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with RawUpstream(SCRIPTS) as upstream:
        providers = {"raw": {"type": "openai", "base_url": f"{upstream.url}/v1", "api_key": "k"}}
        models = {name: {"provider": "raw"} for name in SCRIPTS}
        config = parse_config({"providers": providers, "models": models, "pipelines": {}}, "raw")
        with ServerThread(create_app(Settings(), config)) as server:
            yield server.url


def sse_events(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in body.split(b"\n") if line.startswith(b"data: ")]


def test_10k_streamed_tool_calls_are_each_an_item_and_do_not_freeze_the_worker(gateway: str) -> None:
    request = orjson.dumps({"model": "many-calls", "input": "x", "tools": TOOLS, "stream": True})

    def stream() -> bytes:  # read raw, parsed afterwards: the test's thread shares the gateway's GIL
        response = httpx.post(f"{gateway}/v1/responses", content=request, timeout=120)
        assert response.status_code == 200, response.text
        return response.content

    body, took = health_while(gateway, stream, HEALTH_LIMIT_S)

    events = sse_events(body)
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [e["output_index"] for e in added] == list(range(MANY_CALLS))
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [(e["output_index"], e["arguments"]) for e in done] == [
        (i, f'{{"i": {i}}}') for i in range(MANY_CALLS)
    ]
    final = events[-1]
    assert final["type"] == "response.completed"
    assert [item["call_id"] for item in final["response"]["output"]] == [
        f"call_{i}" for i in range(MANY_CALLS)
    ]
    assert took, "no health check ran while the answer streamed"
    assert max(took) < HEALTH_LIMIT_S, f"/healthz took up to {max(took):.2f}s"
