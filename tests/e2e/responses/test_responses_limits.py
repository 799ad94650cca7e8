"""The guards of chat completions hold for the new endpoints too: gateway keys, the body limit, and the
request metrics' model label; the store keeps what MOA_RESPONSES_STORE_* allow."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from pydantic import SecretStr

from moa_gateway.config import parse_config
from moa_gateway.settings import Settings
from tests.support.gateways import serve_gateway
from tests.support.recording import Recorder
from tests.support.suites import responses_config


@pytest.fixture(scope="module")
def guarded(upstream: tuple[str, Recorder]) -> Iterator[str]:
    settings = Settings(api_keys=SecretStr("key-one"), max_body_bytes=2048)
    config = parse_config(responses_config(upstream[0]), "guarded")
    with serve_gateway(config, settings) as gateway:
        yield gateway.url


@pytest.mark.parametrize(("path", "field"), [("/v1/responses", "input"), ("/v1/completions", "prompt")])
def test_keys_and_the_body_limit_guard_the_new_endpoints(guarded: str, path: str, field: str) -> None:
    body = {"model": "alpha", field: "hi"}
    assert httpx.post(f"{guarded}{path}", json=body).status_code == 401
    auth = {"authorization": "Bearer key-one"}
    assert httpx.post(f"{guarded}{path}", json=body, headers=auth).status_code == 200
    too_big = httpx.post(f"{guarded}{path}", json={**body, field: "x" * 4096}, headers=auth)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "request_too_large"


def test_stored_responses_need_a_key_too(guarded: str) -> None:
    assert httpx.get(f"{guarded}/v1/responses/resp_1").status_code == 401
    missing = httpx.get(f"{guarded}/v1/responses/resp_1", headers={"authorization": "Bearer key-one"})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"


def test_the_store_keeps_at_most_its_configured_entries(upstream: tuple[str, Recorder]) -> None:
    settings = Settings(responses_store_max_entries=1)  # MOA_RESPONSES_STORE_MAX_ENTRIES=1
    config = parse_config(responses_config(upstream[0]), "one-entry")
    with (
        serve_gateway(config, settings) as gateway,
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as client,
    ):
        first = client.responses.create(model="alpha", input="first")
        assert client.responses.retrieve(first.id).id == first.id
        second = client.responses.create(model="alpha", input="second")

        assert client.responses.retrieve(second.id).id == second.id
        with pytest.raises(openai.NotFoundError):  # the oldest went to make room
            client.responses.retrieve(first.id)
