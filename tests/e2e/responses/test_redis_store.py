"""The Redis response store against a real `redis-server` (Debian's package; `make test` installs it):
two gateway processes share it, so a response created on one is retrieved, continued and deleted on
the other; entries expire by TTL in Redis; and a store that is down fails retrieval, not answers."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import redis
from openai.types.responses import ResponseCompletedEvent
from pydantic import SecretStr

from moa_gateway.config import parse_config
from moa_gateway.settings import Settings
from tests.support.cli import free_port, serve, wait_ready
from tests.support.gateways import serve_gateway
from tests.support.recording import Recorder
from tests.support.suites import responses_config


def _serve(config: Path, store: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = serve(config, port, {"MOA_RESPONSES_STORE": store, "MOA_RESPONSES_STORE_TTL_S": "60"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
    except AssertionError:
        process.kill()
        raise
    return process, url


@pytest.fixture(scope="module")
def two_gateways(
    redis_url: str, upstream: tuple[str, Recorder], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Two `moa-gateway serve` processes on one config and one Redis."""
    config = tmp_path_factory.mktemp("redis") / "moa.yaml"
    config.write_text(json.dumps(responses_config(upstream[0])))  # JSON is YAML
    processes = [_serve(config, redis_url), _serve(config, redis_url)]
    try:
        yield processes[0][1], processes[1][1]
    finally:
        for process, _ in processes:
            process.terminate()
            process.communicate(timeout=15)  # and its output pipe closed


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def test_two_gateway_processes_share_stored_responses(two_gateways: tuple[str, str], redis_url: str) -> None:
    with _client(two_gateways[0]) as a, _client(two_gateways[1]) as b:
        first = a.responses.create(model="moa-1", input="My name is Ada.")
        assert b.responses.retrieve(first.id).output_text == first.output_text

        second = b.responses.create(model="alpha", previous_response_id=first.id, input="What is my name?")
        assert a.responses.retrieve(second.id).previous_response_id == first.id
        third = a.responses.create(model="alpha", previous_response_id=second.id, input="Again?")
        assert third.status == "completed"

        ttl = redis.Redis.from_url(redis_url).ttl(f"moa:response:anonymous:{first.id}")
        assert 0 < ttl <= 60

        a.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            b.responses.retrieve(first.id)
        with pytest.raises(openai.NotFoundError):
            b.responses.create(model="alpha", previous_response_id=first.id, input="and?")
        *_, last = b.responses.create(model="moa-1", input="stream it", stream=True)
        assert isinstance(last, ResponseCompletedEvent)
        assert a.responses.retrieve(last.response.id).status == "completed"


def test_entries_expire_in_redis_after_the_ttl(redis_url: str, upstream: tuple[str, Recorder]) -> None:
    settings = Settings(responses_store=SecretStr(redis_url), responses_store_ttl_s=1)
    config = parse_config(responses_config(upstream[0]), "ttl")
    with serve_gateway(config, settings) as gateway, _client(gateway.url) as client:
        response = client.responses.create(model="alpha", input="short-lived")
        assert client.responses.retrieve(response.id).id == response.id
        time.sleep(1.5)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(response.id)


def test_a_store_that_is_down_fails_retrieval_but_not_answers(upstream: tuple[str, Recorder]) -> None:
    settings = Settings(responses_store=SecretStr(f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"))
    config = parse_config(responses_config(upstream[0]), "down")
    with serve_gateway(config, settings) as gateway, _client(gateway.url) as client:
        assert client.responses.create(model="alpha", input="still answered").status == "completed"
        with pytest.raises(openai.APIStatusError) as caught:
            client.responses.retrieve("resp_123")
        assert caught.value.status_code == 502
        assert "The response store is unavailable" in caught.value.message
        assert "hunter2" not in caught.value.response.text
