"""An upstream that answers in the legacy `function_call` shape (message.function_call, streamed
delta.function_call) instead of `tool_calls`: the client gets the call as a tool call, in chat JSON and
streams, direct and as a pipeline's aggregator, and on /v1/responses. Over real HTTP, through the OpenAI
SDK, from a real upstream server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest

from tests.support.gateways import serve_gateway
from tests.support.raw_upstream import ROLE, RawUpstream, Script, chunk, frame, json_body, sse
from tests.support.servers import ServerThread

ARGUMENTS = '{"city": "Paris"}'
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
ASK: Any = [{"role": "user", "content": "Weather in Paris?"}]


def legacy_answer() -> Script:
    """A call in the legacy shape, streamed (name first, then the arguments in pieces) or not, as asked."""
    message = {
        "role": "assistant",
        "content": None,
        "function_call": {"name": "get_weather", "arguments": ARGUMENTS},
    }
    usage = {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}
    choice = {"index": 0, "message": message, "finish_reason": "function_call"}
    plain = json_body({"object": "chat.completion", "choices": [choice], "usage": usage})
    streamed = sse(
        ROLE,
        frame(chunk({"function_call": {"name": "get_weather", "arguments": ""}})),
        frame(chunk({"function_call": {"arguments": ARGUMENTS[:9]}})),
        frame(chunk({"function_call": {"arguments": ARGUMENTS[9:]}})),
        frame(chunk({}, "function_call")),
        frame(b"[DONE]"),
    )

    async def script(request: dict[str, Any]) -> AsyncIterator[bytes]:
        async for piece in (streamed if request.get("stream") else plain)(request):
            yield piece

    return script


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServerThread]:
    with RawUpstream({"legacy": legacy_answer()}) as upstream:
        config = {
            "providers": {"up": {"type": "openai", "base_url": f"{upstream.url}/v1"}},
            "models": {"legacy": {"provider": "up"}, "writer": {"provider": "up"}},
            "pipelines": {"moa": {"layers": [{"proposers": ["writer"]}], "aggregator": "legacy"}},
        }
        with serve_gateway(config) as server:
            yield server


@pytest.fixture
def client(gateway: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as client:
        yield client


@pytest.mark.parametrize("model", ["legacy", "moa"])
def test_the_legacy_call_reaches_the_client_as_a_tool_call(client: openai.OpenAI, model: str) -> None:
    completion = client.chat.completions.create(model=model, messages=ASK, tools=TOOLS)

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})


@pytest.mark.parametrize("model", ["legacy", "moa"])
def test_the_streamed_legacy_call_reaches_the_client_as_a_tool_call(
    client: openai.OpenAI, model: str
) -> None:
    calls: dict[int, dict[str, str]] = {}
    finish_reasons = []
    for event in client.chat.completions.create(model=model, messages=ASK, tools=TOOLS, stream=True):
        for choice in event.choices:
            finish_reasons.append(choice.finish_reason)
            for piece in choice.delta.tool_calls or []:
                call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += piece.id or ""
                if piece.function is not None:
                    call["name"] += piece.function.name or ""
                    call["arguments"] += piece.function.arguments or ""

    assert list(calls) == [0]
    assert calls[0]["id"].startswith("call_")
    assert (calls[0]["name"], json.loads(calls[0]["arguments"])) == ("get_weather", {"city": "Paris"})
    assert [reason for reason in finish_reasons if reason] == ["tool_calls"]


def test_the_legacy_call_is_a_function_call_item_on_responses(client: openai.OpenAI) -> None:
    tools: Any = [{"type": "function", **TOOLS[0]["function"]}]

    response = client.responses.create(model="legacy", input="Weather in Paris?", tools=tools)

    [item] = [item for item in response.output if item.type == "function_call"]
    assert item.name == "get_weather" and json.loads(item.arguments) == {"city": "Paris"}
    assert item.call_id.startswith("call_")
