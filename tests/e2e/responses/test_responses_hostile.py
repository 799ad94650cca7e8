"""`POST /v1/responses` against hostile input, over real HTTP: a request that would freeze the worker
(health checks keep answering within a second while it is served) and malformed shapes (a 400 in
OpenAI's error shape naming the field; fuzzed near-valid bodies: never a 500)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.gateways import Gateway
from tests.support.health import health_while

HEALTH_LIMIT_S = 1.0


def many_tools(count: int) -> list[dict[str, Any]]:
    return [{"type": "function", "name": f"tool_{i}", "parameters": {"type": "object"}} for i in range(count)]


def test_10k_tools_are_refused_without_freezing_the_worker(gateway: Gateway) -> None:
    """A count of each name froze the worker 3 s here (45 s for 30k tools). Names are now checked in one
    pass, and more tools than OpenAI allows (MOA_MAX_TOOLS, 128) are a 400 before any call."""
    body = {"model": "alpha", "input": "Use a tool.", "tools": many_tools(10_000)}
    request = orjson.dumps(body)  # before the probes: the test's thread shares the gateway's GIL
    response, took = health_while(gateway.url, lambda: post(gateway.url, request))

    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "tools"
    assert "at most 128 tools" in response.json()["error"]["message"]
    assert gateway.recorder.bodies() == []
    assert took, "no health check ran while the request was served"
    assert max(took) < HEALTH_LIMIT_S, f"/healthz took up to {max(took):.2f}s"


def test_as_many_tools_as_openai_allows_are_offered_to_the_aggregator(gateway: Gateway) -> None:
    body = {"model": "alpha", "input": "Use a tool.", "tools": many_tools(128)}
    response = post(gateway.url, orjson.dumps(body))

    assert response.status_code == 200, response.text
    assert [item["type"] for item in response.json()["output"]] == ["function_call"]
    [sent] = gateway.recorder.sent_to("alpha")
    assert len(sent["tools"]) == 128


def test_a_duplicate_tool_name_is_a_400_naming_it(gateway: Gateway) -> None:
    tools = many_tools(128)  # as many as a request may offer (MOA_MAX_TOOLS)
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


WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
CALL = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"}

# A malformed body (beside `model`) -> the field its 400 names.
MALFORMED: dict[str, tuple[dict[str, Any], str]] = {
    "a user part that is a string": ({"input": [{"role": "user", "content": ["hi"]}]}, "input[0].content[0]"),
    "a user part that is a number": ({"input": [{"role": "user", "content": [5]}]}, "input[0].content[0]"),
    "a user part that is null": ({"input": [{"role": "user", "content": [None]}]}, "input[0].content[0]"),
    "an assistant part that is a string": (
        {"input": [{"role": "assistant", "content": ["hi"]}, {"role": "user", "content": "x"}]},
        "input[0].content[0]",
    ),
    "a text part whose text is an object": (
        {"input": [{"role": "user", "content": [{"type": "input_text", "text": {"a": 1}}]}]},
        "input[0].content[0].text",
    ),
    "a function output of numbers": (
        {"input": [CALL, {"type": "function_call_output", "call_id": "call_1", "output": [5]}]},
        "input[1].output[0]",
    ),
    "function call arguments that are an object": (
        {"input": [CALL | {"arguments": {"city": "Paris"}}]},
        "input[0].arguments",
    ),
    "a namespace whose tools are a string": (
        {"input": "x", "tools": [{"type": "namespace", "name": "crm", "tools": "get_weather"}]},
        "tools[0].tools",
    ),
    "a namespace whose tools are numbers": (
        {"input": "x", "tools": [{"type": "namespace", "name": "crm", "tools": [5]}]},
        "tools[0].tools[0]",
    ),
    "a namespace without tools": (
        {"input": "x", "tools": [{"type": "namespace", "name": "crm"}]},
        "tools[0].tools",
    ),
    "a namespace without a name": (
        {"input": "x", "tools": [{"type": "namespace", "tools": [WEATHER]}]},
        "tools[0].name",
    ),
    "allowed_tools that are a string": (
        {"input": "x", "tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "tools": "get_weather"}},
        "tool_choice.tools",
    ),
    "allowed_tools that are numbers": (
        {"input": "x", "tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "tools": [5]}},
        "tool_choice.tools[0]",
    ),
    "allowed_tools missing": (
        {"input": "x", "tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "mode": "auto"}},
        "tool_choice.tools",
    ),
    "an allowed function without a name": (
        {
            "input": "x",
            "tools": [WEATHER],
            "tool_choice": {"type": "allowed_tools", "tools": [{"type": "function"}]},
        },
        "tool_choice.tools[0].name",
    ),
    "a named tool_choice without a name": (
        {"input": "x", "tools": [WEATHER], "tool_choice": {"type": "function", "name": 5}},
        "tool_choice.name",
    ),
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_input_is_a_400_naming_the_field(gateway: Gateway, case: str, stream: bool) -> None:
    extra, param = MALFORMED[case]
    response = httpx.post(f"{gateway.base_url}/responses", json={"model": "moa", "stream": stream, **extra})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert error["message"].startswith(f"{param}: ")
    assert gateway.recorder.bodies() == [], "nothing went upstream"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
anything: st.SearchStrategy[Any] = json_values | st.sampled_from(
    [None, "", -1, 3.5, [], {}, [5], ["x"], [None], [[]]]
)


def either(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly `valid`, sometimes any JSON value."""
    return st.one_of(valid, valid, anything)


# Near-valid bodies: each field has the JSON type the request model checks, with anything inside it, so
# the translation's own checks are what the fuzz reaches.
text = st.text(max_size=5)
part_kinds = st.sampled_from(
    ["input_text", "output_text", "text", "refusal", "input_image", "input_file", "x"]
)
part = either(
    st.fixed_dictionaries(
        {"type": either(part_kinds)},
        optional={
            "text": either(text),
            "refusal": either(text),
            "image_url": either(st.just("data:image/png;base64,AAAA")),
            "file_data": anything,
        },
    )
)
content = either(text | st.lists(part, max_size=3))
roles = st.sampled_from(["user", "assistant", "system", "developer"])
item = st.fixed_dictionaries(
    {"role": either(roles), "content": content}, optional={"type": either(st.just("message"))}
) | st.fixed_dictionaries(
    {"type": st.sampled_from(["function_call", "function_call_output", "reasoning"])},
    optional={
        "call_id": either(st.just("call_1")),
        "name": either(st.just("get_weather")),
        "arguments": either(st.just("{}")),
        "output": content,
        "summary": anything,
    },
)
function = st.fixed_dictionaries(
    {"type": either(st.just("function")), "name": either(st.just("get_weather"))},
    optional={"parameters": st.just({"type": "object"})},
)
tool = function | st.fixed_dictionaries(
    {"type": st.just("namespace")},
    optional={"name": either(st.just("crm")), "tools": either(st.lists(either(function), max_size=2))},
)
tool_choice = st.sampled_from(["auto", "none", "required"]) | st.fixed_dictionaries(
    {"type": either(st.sampled_from(["function", "allowed_tools"]))},
    optional={
        "name": either(st.just("get_weather")),
        "mode": st.sampled_from(["auto", "required"]),
        "tools": either(st.lists(either(function), max_size=2)),
    },
)
near_valid = st.fixed_dictionaries(
    {"model": st.sampled_from(["alpha", "moa-1"]), "input": text | st.lists(item, min_size=1, max_size=3)},
    optional={
        "tools": st.lists(tool, max_size=2),
        "tool_choice": tool_choice,
        "text": st.fixed_dictionaries({}, optional={"format": anything}),
        "stream": st.booleans(),
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=near_valid)
def test_fuzzed_bodies_are_never_a_500(gateway: Gateway, body: dict[str, Any]) -> None:
    response = httpx.post(f"{gateway.base_url}/responses", json=body, timeout=30)

    assert response.status_code < 500, response.text
    if response.status_code != 200:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
    else:
        assert "server_error" not in response.text, response.text
