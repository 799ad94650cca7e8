"""The HTTP API in-process (TestClient runs the lifespan): shapes, sums, SSE framing and errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from moa_gateway.config import GatewayConfig, parse_config
from moa_gateway.main import create_app
from moa_gateway.settings import Settings
from tests.support.asks import ASK
from tests.support.configs import simulated_config, topology


def client_for(config: GatewayConfig, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(**settings), config), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with client_for(simulated_config()) as c:
        yield c


def sse_frames(text: str) -> list[str]:
    """The `data:` payloads and `:` comments of an SSE body, in order."""
    return [block for block in text.split("\n\n") if block]


def test_moa_completion_has_openai_shape_and_sums_every_call(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={"model": "moa", "messages": ASK})

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "moa"
    assert body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    assert choice["message"]["content"].startswith(
        "[omega] Synthesis of 3 responses on 'Why is the sky blue?'"
    )
    calls = body["moa"]["calls"]
    assert [(c["layer"], c["role"], c["model"]) for c in calls] == [
        (1, "proposer", "alpha"), (1, "proposer", "beta"), (1, "proposer", "gamma"),
        (2, "proposer", "alpha"), (2, "proposer", "beta"), (2, "proposer", "gamma"),
        (3, "aggregator", "omega"),
    ]  # fmt: skip
    usage = body["usage"]
    assert usage["prompt_tokens"] == sum(c["prompt_tokens"] for c in calls)
    assert usage["completion_tokens"] == sum(c["completion_tokens"] for c in calls)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert all("text" not in c for c in calls)


def test_cost_is_tokens_times_price_and_matches_the_header(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={"model": "moa-1", "messages": ASK})

    body = response.json()
    prices = {"alpha": (1.0, 2.0), "beta": (2.0, 3.0), "gamma": (3.0, 4.0), "omega": (4.0, 5.0)}
    for call in body["moa"]["calls"]:
        price_in, price_out = prices[call["model"]]
        expected = (call["prompt_tokens"] * price_in + call["completion_tokens"] * price_out) / 1e6
        assert call["cost_usd"] == pytest.approx(expected)
    total = sum(c["cost_usd"] for c in body["moa"]["calls"])
    assert body["moa"]["cost_usd"] == pytest.approx(total)
    assert float(response.headers["x-moa-cost-usd"]) == pytest.approx(total)


def test_include_proposals_returns_each_proposers_text(client: TestClient) -> None:
    body = client.post(
        "/v1/chat/completions", json={"model": "moa-1", "messages": ASK, "moa": {"include_proposals": True}}
    ).json()

    proposals = [c for c in body["moa"]["calls"] if c["role"] == "proposer"]
    assert [p["text"].split("]")[0] for p in proposals] == ["[alpha", "[beta", "[gamma"]
    for i, proposal in enumerate(proposals, 1):  # the aggregator quoted each one
        assert f"({i}) {proposal['model']}: " in body["choices"][0]["message"]["content"]
    assert "text" not in body["moa"]["calls"][-1]


def test_direct_model_call_makes_one_upstream_call(client: TestClient) -> None:
    body = client.post(
        "/v1/chat/completions", json={"model": "beta", "messages": ASK, "max_tokens": 4}
    ).json()

    assert body["model"] == "beta"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 4
    assert body["moa"]["pipeline"] is None
    assert [(c["role"], c["model"]) for c in body["moa"]["calls"]] == [("direct", "beta")]


def test_stream_sends_role_first_then_tokens_finish_usage_and_done(client: TestClient) -> None:
    request = {"model": "moa-1", "messages": ASK, "stream": True, "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/chat/completions", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = sse_frames(response.read().decode())

    assert frames[-1] == "data: [DONE]"
    chunks = [json.loads(f.removeprefix("data: ")) for f in frames[:-1] if f.startswith("data: ")]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "moa-1" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.startswith("[omega] Synthesis of 3 responses")
    finish, usage = chunks[-2], chunks[-1]
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0
    assert len(usage["moa"]["calls"]) == 4
    assert usage["usage"]["completion_tokens"] == sum(c["completion_tokens"] for c in usage["moa"]["calls"])
    assert all(c["usage"] is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(client: TestClient) -> None:
    with client.stream(
        "POST", "/v1/chat/completions", json={"model": "moa-1", "messages": ASK, "stream": True}
    ) as response:
        frames = sse_frames(response.read().decode())

    chunks = [json.loads(f.removeprefix("data: ")) for f in frames[:-1]]
    assert all(c["choices"] and "usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_sends_keepalive_comments_while_proposers_work() -> None:
    config = simulated_config(ttft_ms=150, tokens_per_s=0)
    with (
        client_for(config, sse_keepalive_s=0.03) as slow,
        slow.stream(
            "POST", "/v1/chat/completions", json={"model": "moa-1", "messages": ASK, "stream": True}
        ) as response,
    ):
        frames = sse_frames(response.read().decode())

    first_content = next(i for i, f in enumerate(frames) if '"content":"[' in f)
    assert ": keep-alive" in frames[1:first_content]
    assert frames[0].startswith("data: ") and '"role":"assistant"' in frames[0]


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"model": "moa"}, "messages", "Field required"),
        ({"model": "moa", "messages": []}, "messages", "at least 1"),
        (
            {"model": "moa", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
            "Input should be",
        ),
        ({"model": "moa", "messages": ASK, "temperature": 5}, "temperature", "less than or equal to 2"),
        ({"model": "moa", "messages": ASK, "n": 129}, "n", "less than or equal to 128"),
        (
            {"model": "moa", "messages": ASK, "tools": [{"type": "function"}]},
            "tools[0]",
            "needs its `function`",
        ),
        (
            {"model": "moa", "messages": ASK, "moa": {"include_proposal": True}},
            "moa.include_proposal",
            "Extra inputs",
        ),
        ({"messages": ASK}, "model", "Field required"),
    ],
    ids=["no-messages", "empty-messages", "bad-role", "temperature", "n", "tools", "moa-typo", "no-model"],
)
def test_invalid_body_is_400_with_param(
    client: TestClient, body: dict[str, Any], param: str, message: str
) -> None:
    response = client.post("/v1/chat/completions", json=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert message in error["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""], ids=["malformed", "array", "empty"])
def test_body_that_is_not_a_json_object_is_400(client: TestClient, raw: bytes) -> None:
    response = client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_unknown_model_is_404_model_not_found(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={"model": "gpt-9", "messages": ASK})

    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": "The model 'gpt-9' does not exist",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


def test_unknown_route_and_method_use_openai_error_shape(client: TestClient) -> None:
    missing = client.get("/v1/nothing")
    wrong_method = client.get("/v1/chat/completions")

    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_url"
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"


def unreachable_config(api_key: str) -> GatewayConfig:
    # port 9 (discard) is closed on the test machine: connections are refused at once
    provider = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": api_key, "timeout_s": 5}
    return parse_config({"providers": {"down": provider}, **topology("down")}, "test")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_unreachable_upstream_is_502_naming_models_never_the_key(stream: bool) -> None:
    key = "sk-live-do-not-leak-42"
    with client_for(unreachable_config(key)) as down:
        response = down.post("/v1/chat/completions", json={"model": "moa", "messages": ASK, "stream": stream})

    assert response.status_code == 502, "a failure before the first byte keeps its status, streaming or not"
    error = response.json()["error"]
    assert error["type"] == "upstream_error"
    for model in ["alpha", "beta", "gamma"]:
        assert f"model {model}: the provider could not be reached" in error["message"]
    assert key not in response.text


def test_models_lists_pipelines_then_aliases(client: TestClient) -> None:
    body = client.get("/v1/models").json()

    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["moa", "moa-1", "alpha", "beta", "gamma", "omega"]
    assert client.get("/v1/models/moa").json()["owned_by"] == "moa-gateway:pipeline"
    assert client.get("/v1/models/nope").status_code == 404


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    given = client.get("/healthz", headers={"x-request-id": "abc-123"})
    made = client.get("/healthz")
    unsafe = client.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})

    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"
