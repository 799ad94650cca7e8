"""Gateway keys, admission control, draining, body and request limits, and `x-should-retry`."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from moa_gateway.config import GatewayConfig, parse_config
from moa_gateway.main import create_app
from moa_gateway.settings import Settings
from tests.support.asks import ASK
from tests.support.configs import simulated_config, topology
from tests.support.servers import ServerThread


def client_for(config: GatewayConfig | None = None, **settings: Any) -> TestClient:
    return TestClient(
        create_app(Settings(**settings), config or simulated_config()), raise_server_exceptions=False
    )


@pytest.fixture(scope="module")
def keyed() -> Iterator[TestClient]:
    with client_for(api_keys=SecretStr("key-one, key-two")) as client:
        yield client


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "Basic key-one", "Bearer ", "key-one"],
    ids=["none", "wrong", "basic", "empty", "no-scheme"],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models"])
def test_with_keys_set_v1_needs_a_valid_bearer_key(
    keyed: TestClient, authorization: str | None, path: str
) -> None:
    headers = {"authorization": authorization} if authorization else {}

    response = keyed.request(
        "POST" if "chat" in path else "GET", path, json={"model": "moa", "messages": ASK}, headers=headers
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("key", ["key-one", "key-two"])
def test_either_key_is_accepted(keyed: TestClient, key: str) -> None:
    response = keyed.post(
        "/v1/chat/completions",
        json={"model": "moa-1", "messages": ASK},
        headers={"authorization": f"Bearer {key}"},
    )

    assert response.status_code == 200


def test_probes_and_metrics_need_no_key(keyed: TestClient) -> None:
    for path in ["/healthz", "/readyz", "/metrics"]:
        assert keyed.get(path).status_code == 200


def test_hashed_keys_from_the_config_are_accepted() -> None:
    data = {"providers": {"sim": {"type": "simulated", "ttft_ms": 0, "tokens_per_s": 0}}, **topology("sim")}
    data["auth"] = {"api_key_sha256": [hashlib.sha256(b"hashed-key").hexdigest()]}
    with client_for(parse_config(data, "test")) as client:
        good = client.get("/v1/models", headers={"authorization": "Bearer hashed-key"})
        bad = client.get("/v1/models", headers={"authorization": "Bearer hashed-keys"})

    assert (good.status_code, bad.status_code) == (200, 401)


def test_without_keys_the_api_is_open() -> None:
    with client_for() as client:
        assert client.get("/v1/models").status_code == 200


def test_the_sdk_sees_authentication_errors_against_a_real_server() -> None:
    app = create_app(Settings(api_keys=SecretStr("sdk-key")), simulated_config())
    with ServerThread(app) as server:
        with (
            openai.OpenAI(base_url=f"{server.url}/v1", api_key="nope", max_retries=0) as wrong,
            pytest.raises(openai.AuthenticationError),
        ):
            wrong.models.list()
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key="sdk-key", max_retries=0) as right:
            assert [m.id for m in right.models.list()][:2] == ["moa", "moa-1"]


async def test_above_the_concurrency_cap_requests_get_429_not_a_queue() -> None:
    app = create_app(Settings(max_concurrent_requests=1), simulated_config(ttft_ms=400))
    with ServerThread(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            slow = asyncio.create_task(
                client.post("/v1/chat/completions", json={"model": "alpha", "messages": ASK})
            )
            await asyncio.sleep(0.15)  # the first request is in flight
            refused = await client.post("/v1/chat/completions", json={"model": "alpha", "messages": ASK})
            first = await slow
            after = await client.post("/v1/chat/completions", json={"model": "alpha", "messages": ASK})

    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "concurrency_limit"
    assert "x-should-retry" not in refused.headers, "a retry can help here"
    assert (first.status_code, after.status_code) == (200, 200)


def test_while_draining_new_requests_get_503_and_readiness_fails() -> None:
    app = create_app(Settings(), simulated_config())
    with TestClient(app) as client:
        app.state.lifecycle.draining = True
        chat = client.post("/v1/chat/completions", json={"model": "moa", "messages": ASK})
        ready = client.get("/readyz")

    assert chat.status_code == 503 and chat.json()["error"]["code"] == "shutting_down"
    assert chat.headers["retry-after"] == "1"
    assert ready.status_code == 503 and ready.json()["status"] == "draining"


def test_an_oversized_body_is_413_whether_declared_or_streamed() -> None:
    big = {"model": "moa", "messages": [{"role": "user", "content": "x" * 10_000}]}
    app = create_app(Settings(max_body_bytes=2048), simulated_config())
    with ServerThread(app) as server:
        declared = httpx.post(f"{server.url}/v1/chat/completions", json=big)
        payload = httpx.Request("POST", "/", json=big).read()
        chunked = httpx.post(
            f"{server.url}/v1/chat/completions",
            content=iter([payload[:1000], payload[1000:]]),  # no content-length: chunked
            headers={"content-type": "application/json"},
        )
        small = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "moa-1", "messages": ASK})

    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"
    assert small.status_code == 200


@pytest.mark.parametrize(
    ("moa", "param"),
    [
        ({"layers": [["alpha"]] * 5}, "moa.layers"),
        ({"layers": [["alpha", "beta", "gamma"] * 3]}, "moa.layers[0]"),
        ({"layers": [["alpha", "gpt-9"]]}, "moa.layers[0][1]"),
        ({"layers": [[]]}, "moa.layers[0]"),
        ({"aggregator": "gpt-9"}, "moa.aggregator"),
    ],
    ids=["too-many-layers", "too-many-proposers", "unknown-alias", "empty-layer", "unknown-aggregator"],
)
def test_topology_overrides_are_checked(moa: dict[str, Any], param: str) -> None:
    with client_for(max_layers=4, max_proposers=8) as client:
        response = client.post("/v1/chat/completions", json={"model": "moa", "messages": ASK, "moa": moa})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_a_valid_override_runs_the_requested_models() -> None:
    with client_for() as client:
        override = {"layers": [["gamma"]], "aggregator": "beta"}
        body = client.post(
            "/v1/chat/completions", json={"model": "moa", "messages": ASK, "moa": override}
        ).json()
        direct = client.post(
            "/v1/chat/completions", json={"model": "alpha", "messages": ASK, "moa": override}
        )

    assert [(c["role"], c["model"]) for c in body["moa"]["calls"]] == [
        ("proposer", "gamma"),
        ("aggregator", "beta"),
    ]
    assert direct.status_code == 400 and direct.json()["error"]["param"] == "moa"


def test_too_many_messages_is_400() -> None:
    with client_for(max_messages=2) as client:
        messages = [{"role": "user", "content": str(i)} for i in range(3)]
        response = client.post("/v1/chat/completions", json={"model": "moa", "messages": messages})

    assert response.status_code == 400 and response.json()["error"]["param"] == "messages"


def test_errors_a_client_retry_cannot_fix_say_so() -> None:
    provider = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "retries": {"max_attempts": 1}}
    down = parse_config({"providers": {"down": provider}, **topology("down")}, "test")
    with client_for() as client, client_for(down) as failing:
        not_found = client.post("/v1/chat/completions", json={"model": "gpt-9", "messages": ASK})
        bad_gateway = failing.post("/v1/chat/completions", json={"model": "alpha", "messages": ASK})

    assert not_found.status_code == 404 and not_found.headers["x-should-retry"] == "false"
    assert bad_gateway.status_code == 502 and bad_gateway.headers["x-should-retry"] == "false"
