"""Stored responses belong to the caller that stored them: with two gateway keys, key B cannot read,
continue or delete what key A stored (a 404, as for an id never stored), in every store backend; the
store names callers by a hash, never by the key or its digest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import redis
from openai.types.responses import ResponseCompletedEvent
from pydantic import SecretStr

from moa_gateway.config import parse_config
from moa_gateway.settings import Settings
from tests.support.gateways import serve_gateway
from tests.support.recording import Recorder
from tests.support.suites import responses_config

KEY_A, KEY_B = "tenant-a-secret-key", "tenant-b-secret-key"


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the gateway under test keeps stored responses."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'responses.db'}"
    return str(request.param)


@pytest.fixture
def gateway_url(store: str, upstream: tuple[str, Recorder]) -> Iterator[str]:
    settings = Settings(api_keys=SecretStr(f"{KEY_A}, {KEY_B}"), responses_store=SecretStr(store))
    config = parse_config(responses_config(upstream[0]), "tenancy")
    with serve_gateway(config, settings) as gateway:
        yield f"{gateway.url}/v1"


def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0)


def test_another_key_cannot_get_continue_or_delete_a_stored_response(
    gateway_url: str, upstream: tuple[str, Recorder]
) -> None:
    recorder = upstream[1]
    with _client(gateway_url, KEY_A) as a, _client(gateway_url, KEY_B) as b:
        first = a.responses.create(model="alpha", input="My name is Ada.")
        with pytest.raises(openai.NotFoundError) as caught:
            b.responses.retrieve(first.id)
        assert caught.value.body == {  # word for word the 404 of an id never stored
            "message": f"Response with id '{first.id}' not found.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        recorder.clear()
        with pytest.raises(openai.NotFoundError) as caught:
            b.responses.create(model="alpha", previous_response_id=first.id, input="What is my name?")
        assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "previous_response_id"
        assert recorder.bodies() == [], "no run starts from another caller's history"
        with pytest.raises(openai.NotFoundError):
            b.responses.delete(first.id)

        # A's response is still there for A, who can continue it and delete it.
        assert a.responses.retrieve(first.id).output_text == first.output_text
        second = a.responses.create(model="alpha", previous_response_id=first.id, input="What is my name?")
        assert second.status == "completed"
        [sent] = recorder.sent_to("alpha")
        assert sent["messages"][0] == {"role": "user", "content": "My name is Ada."}
        a.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            a.responses.retrieve(first.id)

        # And the other way round: what B stores, A cannot reach.
        *_, last = b.responses.create(model="alpha", input="B's own", stream=True)
        assert isinstance(last, ResponseCompletedEvent)
        stored_by_b = last.response.id
        assert b.responses.retrieve(stored_by_b).id == stored_by_b
        with pytest.raises(openai.NotFoundError):
            a.responses.retrieve(stored_by_b)


def test_redis_names_the_caller_by_a_hash_never_by_the_key(
    redis_url: str, upstream: tuple[str, Recorder]
) -> None:
    settings = Settings(api_keys=SecretStr(KEY_A), responses_store=SecretStr(redis_url))
    config = parse_config(responses_config(upstream[0]), "tenancy-keys")
    with serve_gateway(config, settings) as gateway, _client(f"{gateway.url}/v1", KEY_A) as a:
        response = a.responses.create(model="alpha", input="Where am I kept?")
    found = redis.Redis.from_url(redis_url, decode_responses=True).keys(f"*{response.id}")
    keys = [str(k) for k in found]
    digest = hashlib.sha256(KEY_A.encode()).hexdigest()
    assert len(keys) == 1 and keys[0].startswith("moa:response:key-")
    assert KEY_A not in keys[0] and digest not in keys[0] and digest[:16] not in keys[0]


def test_another_key_cannot_reference_a_stored_responses_items(
    gateway_url: str, upstream: tuple[str, Recorder]
) -> None:
    """An `item_reference` resolves from the caller's own stored responses only: key B naming key A's
    output item gets the 404 of an item never stored, and no upstream call is made."""
    recorder = upstream[1]
    with _client(gateway_url, KEY_A) as a, _client(gateway_url, KEY_B) as b:
        first = a.responses.create(model="alpha", input="My name is Ada.")
        item_id = first.output[0].id
        turn = [{"type": "item_reference", "id": item_id}, {"role": "user", "content": "What is my name?"}]
        recorder.clear()
        with pytest.raises(openai.NotFoundError) as caught:
            b.responses.create(model="alpha", input=turn)  # type: ignore[arg-type]
        assert isinstance(caught.value.body, dict) and item_id in caught.value.body["message"]
        assert recorder.bodies() == []
        again = a.responses.create(model="alpha", input=turn)  # type: ignore[arg-type]
        assert again.status == "completed"
