"""Chat messages of the wrong shape (a tool call list that is a number, a call without its function, a
text part without its text...) are a 400 in OpenAI's shape naming the field, over real HTTP and through
the OpenAI SDK: never a 500 (which the SDK would retry)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.configs import simulated_config
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread

ASK = {"role": "user", "content": "What is the weather?"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


def assistant(**fields: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": None, **fields}


def result(**fields: Any) -> dict[str, Any]:
    return {"role": "tool", "content": "sunny", **fields}


# (what is wrong, the messages, the `param` the error names)
MALFORMED: list[tuple[str, list[Any], str]] = [
    ("tool_calls a number", [ASK, assistant(tool_calls=5), ASK], "messages[1].tool_calls"),
    ("tool_calls a string", [ASK, assistant(tool_calls="weather"), ASK], "messages[1].tool_calls"),
    ("tool_calls an object", [ASK, assistant(tool_calls=CALL), ASK], "messages[1].tool_calls"),
    ("a tool call a number", [ASK, assistant(tool_calls=[5]), ASK], "messages[1].tool_calls[0]"),
    ("no function", [ASK, assistant(tool_calls=[{"id": "c", "type": "function"}])], "messages[1].tool_calls[0]"),
    (
        "function a string",
        [ASK, assistant(tool_calls=[{**CALL, "function": "weather"}])],
        "messages[1].tool_calls[0].function",
    ),
    (
        "function name a number",
        [ASK, assistant(tool_calls=[{**CALL, "function": {"name": 5, "arguments": "{}"}}])],
        "messages[1].tool_calls[0].function.name",
    ),
    (
        "arguments a number",
        [ASK, assistant(tool_calls=[{**CALL, "function": {"name": "weather", "arguments": 5}}])],
        "messages[1].tool_calls[0].function.arguments",
    ),
    ("tool call id a number", [ASK, assistant(tool_calls=[{**CALL, "id": 5}])], "messages[1].tool_calls[0].id"),
    ("function_call a number", [ASK, assistant(function_call=5), ASK], "messages[1].function_call"),
    ("function_call without name", [ASK, assistant(function_call={"arguments": "{}"})], "messages[1].function_call.name"),
    ("tool_call_id a number", [ASK, assistant(tool_calls=[CALL]), result(tool_call_id=5)], "messages[2].tool_call_id"),
    ("tool_call_id a list", [ASK, assistant(tool_calls=[CALL]), result(tool_call_id=["c"])], "messages[2].tool_call_id"),
    ("a part a number", [{"role": "user", "content": [5]}], "messages[0].content[0]"),
    ("a part type a number", [{"role": "user", "content": [{"type": 5}]}], "messages[0].content[0].type"),
    ("a text part without text", [{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0]"),
    ("content a number", [{"role": "user", "content": 5}], "messages[0].content"),
]  # fmt: skip


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServerThread]:
    with serve_gateway(simulated_config()) as server:
        yield server


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("case", "messages", "param"), MALFORMED, ids=[case for case, _, _ in MALFORMED])
def test_a_malformed_message_is_a_400_naming_the_field(
    gateway: ServerThread, case: str, messages: list[Any], param: str, stream: bool
) -> None:
    body = {"model": "moa-1", "messages": messages, "tools": TOOLS, "stream": stream}

    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=10)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"].startswith(f"{param}: ")
    assert "ToolCall" not in error["message"] and ".str" not in error["message"]


def test_the_sdk_gets_a_bad_request_error_at_once(gateway: ServerThread) -> None:
    messages: Any = [ASK, assistant(tool_calls=5), ASK]
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=2) as client,
        pytest.raises(openai.BadRequestError) as raised,
    ):
        client.chat.completions.create(model="moa-1", messages=messages, tools=TOOLS)  # type: ignore[arg-type]

    assert raised.value.param == "messages[1].tool_calls"


def test_well_formed_tool_turns_still_pass_as_sent(gateway: ServerThread) -> None:
    """Arguments as an object (some clients send them so) and tool calls of other types stay accepted."""
    custom = {"id": "call_2", "type": "custom", "custom": {"name": "grep", "input": "x"}}
    messages = [
        ASK,
        assistant(
            tool_calls=[{**CALL, "function": {"name": "weather", "arguments": {"city": "Oslo"}}}, custom]
        ),
        result(tool_call_id="call_1"),
        result(tool_call_id="call_2"),
        {"role": "user", "content": [{"type": "text", "text": "and tomorrow?"}]},
    ]
    body = {"model": "moa-1", "messages": messages, "tools": TOOLS}

    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=10)

    assert response.status_code == 200, response.text
