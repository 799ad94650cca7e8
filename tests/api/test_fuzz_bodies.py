"""Property-based fuzzing of chat completion bodies: never a 5xx, every error in OpenAI's shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moa_gateway.main import create_app
from moa_gateway.settings import Settings
from tests.support.configs import simulated_config
from tests.support.gateways import serve_gateway

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
anything = st.one_of(json_values, st.sampled_from([None, "", -1, 3.5, [], {}, "x" * 50]))
content = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]), "text": st.text(max_size=10)})
    ),
    anything,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "developer", "tool", "robot", ""]) | anything},
    optional={"content": content, "name": st.text(max_size=5) | anything},
)
near_valid = st.fixed_dictionaries(
    {"model": st.sampled_from(["moa", "moa-1", "alpha", "nope", ""]) | anything},
    optional={
        "messages": st.lists(message, max_size=4) | anything,
        "temperature": st.floats(-1, 3) | anything,
        "top_p": st.floats(-1, 2) | anything,
        "max_tokens": st.integers(-5, 50) | anything,
        "n": st.integers(0, 3) | anything,
        "stop": st.text(max_size=5) | st.lists(st.text(max_size=5)) | anything,
        "seed": st.integers() | anything,
        "stream": st.booleans() | anything,
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans() | anything}) | anything,
        "tools": st.lists(json_values, max_size=2) | anything,
        "moa": st.dictionaries(
            st.sampled_from(["include_proposals", "layers", "aggregator", "other"]), anything, max_size=3
        )
        | anything,
    },
)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), simulated_config()), raise_server_exceptions=False) as c:
        yield c


def check(client: TestClient, raw: bytes) -> None:
    response = client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert isinstance(error["type"], str)
        assert error["param"] is None or isinstance(error["param"], str)
        assert error["code"] is None or isinstance(error["code"], str)
    elif response.headers["content-type"].startswith("text/event-stream"):
        assert response.text.rstrip().endswith("data: [DONE]")
    else:
        assert isinstance(response.json()["choices"][0]["message"]["content"], str)


@FUZZ
@given(body=near_valid)
def test_near_valid_bodies(client: TestClient, body: dict[str, Any]) -> None:
    check(client, json.dumps(body).encode())


@FUZZ
@given(body=json_values)
def test_any_json(client: TestClient, body: Any) -> None:
    check(client, json.dumps(body).encode())


@FUZZ
@given(raw=st.binary(max_size=200))
def test_any_bytes(client: TestClient, raw: bytes) -> None:
    check(client, raw)


# OpenAI marks these request fields nullable; clients that serialise unset options as null (the openai
# SDK does for an explicit None) must get the same answer as when the field is left out.
NULLABLE = [
    "frequency_penalty", "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "n",
    "presence_penalty", "seed", "stop", "stream", "stream_options", "temperature", "top_logprobs", "top_p",
]  # fmt: skip


@pytest.mark.parametrize("field", NULLABLE)
def test_an_explicit_null_is_the_same_as_leaving_the_field_out(client: TestClient, field: str) -> None:
    body = {"model": "moa-1", "messages": [{"role": "user", "content": "Why?"}], field: None}

    response = client.post("/v1/chat/completions", json=body)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["choices"][0]["message"]["content"].startswith("[omega] Synthesis of 3 responses")


def test_the_sdk_may_pass_stream_none() -> None:
    """`stream: Optional[Literal[False]]` in openai-python's types: None is sent as `"stream": null`."""
    with (
        serve_gateway(simulated_config()) as server,
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as sdk,
    ):
        completion = sdk.chat.completions.create(
            model="moa-1", messages=[{"role": "user", "content": "Why?"}], stream=None
        )

    content = completion.choices[0].message.content
    assert content is not None and content.startswith("[omega] Synthesis of 3 responses")
