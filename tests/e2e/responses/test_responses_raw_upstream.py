"""`POST /v1/responses` in front of a scripted raw upstream (tests/support/raw_upstream.py), over real
HTTP: an answer of 10k streamed tool calls, and malformed tool calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from moa_gateway.config import parse_config
from tests.support.gateways import serve_gateway
from tests.support.health import health_while
from tests.support.raw_upstream import (
    ROLE,
    SSE_HEAD,
    RawUpstream,
    Script,
    chunk,
    frame,
    json_body,
    post_within,
    raw,
)

HEALTH_LIMIT_S = 1.0
MANY_CALLS = 10_000
TOOLS: Any = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
CHAT_TOOLS: Any = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def call_chunk(index: int) -> bytes:
    function = {"name": "lookup", "arguments": f'{{"i": {index}}}'}
    call = {"index": index, "id": f"call_{index}", "type": "function", "function": function}
    return frame(chunk({"tool_calls": [call]}))


def tool_calls_answer(calls: list[Any]) -> Script:
    """An answer of these tool calls, as a completion or (when asked) as a stream."""
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
    plain = json_body({"object": "chat.completion", "choices": [choice]})
    pieces = [{"index": 0, **call} for call in calls]
    streamed = raw(
        SSE_HEAD
        + ROLE
        + frame(chunk({"tool_calls": pieces}))
        + frame(chunk({}, "tool_calls"))
        + frame(b"[DONE]")
    )

    async def script(request: dict[str, Any]) -> AsyncIterator[bytes]:
        async for piece in (streamed if request.get("stream") else plain)(request):
            yield piece

    return script


# model -> (its one tool call, what the error names)
MALFORMED_CALLS: dict[str, tuple[Any, str]] = {
    "function-string": ({"id": "c1", "type": "function", "function": "lookup"}, "function is not an object"),
    "name-number": (
        {"id": "c1", "type": "function", "function": {"name": 5, "arguments": "{}"}},
        "function.name is not a string: 5",
    ),
    "arguments-object": (
        {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": {"a": 1}}},
        "function.arguments is not a string: a dict",
    ),
    "id-number": ({"id": 7, "type": "function", "function": {"name": "lookup"}}, "id is not a string: 7"),
    "index-list": (
        {"index": [1], "id": "c1", "function": {"name": "lookup"}},
        "index is not a non-negative integer: a list",
    ),
}
SCRIPTS = {
    "many-calls": raw(
        SSE_HEAD
        + ROLE
        + b"".join(call_chunk(i) for i in range(MANY_CALLS))
        + frame(chunk({}, "tool_calls"))
        + frame(b"[DONE]")
    ),
    **{model: tool_calls_answer([call]) for model, (call, _) in MALFORMED_CALLS.items()},
}


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with RawUpstream(SCRIPTS) as upstream:
        providers = {"raw": {"type": "openai", "base_url": f"{upstream.url}/v1", "api_key": "k"}}
        models = {name: {"provider": "raw"} for name in SCRIPTS}
        config = parse_config({"providers": providers, "models": models, "pipelines": {}}, "raw")
        with serve_gateway(config) as server:
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


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", ["responses", "chat"])
@pytest.mark.parametrize("model", MALFORMED_CALLS)
def test_a_malformed_upstream_tool_call_is_a_502_bad_response(
    gateway: str, model: str, api: str, stream: bool
) -> None:
    if api == "responses":
        body = {"model": model, "input": "x", "tools": TOOLS, "stream": stream}
    else:
        body = {"model": model, "messages": [{"role": "user", "content": "x"}], "tools": CHAT_TOOLS}
        body["stream"] = stream
    response = post_within(f"{gateway}/v1/{'responses' if api == 'responses' else 'chat/completions'}", body)

    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "upstream_error" and error["type"] == "upstream_error"
    assert error["message"].startswith(f"model {model}: malformed response (")
    assert MALFORMED_CALLS[model][1] in error["message"]
