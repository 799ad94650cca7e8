"""The exact response cache over real HTTP (a gateway and a recording simulator on 127.0.0.1, through
the openai SDK): a repeated request is answered with no upstream call, as JSON or as a stream, marked
`x-moa-cache: hit`, at zero cost with the original cost saved; another gateway key, another answer-
changing field, `moa.cache: false`, an expired entry and a pipeline without a cache all run upstream."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from moa_gateway.settings import Settings
from tests.support.cache import ask, ask_streamed, cache_config, client, upstream_calls
from tests.support.gateways import recording_upstream, serve_gateway
from tests.support.metrics import scrape
from tests.support.recording import Recorder

KEY_A, KEY_B = "cache-key-a-0123456789", "cache-key-b-0123456789"
# a hit spent nothing: no tokens, and `usage.cost` (OpenRouter's field, USD) 0
ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cost": 0}


@dataclass
class Servers:
    url: str
    recorder: Recorder

    def calls(self) -> int:
        return upstream_calls(self.recorder)

    def metric(self, name: str, **labels: str) -> float:
        return scrape(self.url).value(name, **labels)


@pytest.fixture(scope="module")
def module_servers() -> Iterator[Servers]:
    with recording_upstream() as (upstream_url, recorder):
        settings = Settings(api_keys=SecretStr(f"{KEY_A},{KEY_B}"))
        with serve_gateway(cache_config(upstream_url), settings) as gateway:
            yield Servers(gateway.url, recorder)


@pytest.fixture
def servers(module_servers: Servers) -> Servers:
    module_servers.recorder.clear()
    return module_servers


def question() -> str:
    """A question of its own: the gateway's cache outlives a test."""
    return f"What is the capital of France? ({uuid.uuid4().hex[:8]})"


def test_a_repeated_request_is_answered_from_the_cache_with_no_upstream_call(servers: Servers) -> None:
    asked = question()
    first = ask(servers.url, KEY_A, "cached", asked, temperature=0.2)
    assert first.cache == "miss"
    assert servers.calls() == 4  # three proposers and the aggregator
    servers.recorder.clear()

    again = ask(servers.url, KEY_A, "cached", asked, temperature=0.2)

    assert servers.calls() == 0
    assert again.cache == "hit"
    assert again.text == first.text
    assert again.usage == ZERO_USAGE
    assert again.moa["cost_usd"] == 0 and again.moa["calls"] == []
    assert again.cost_header == "0.0000000000"
    assert first.moa["cost_usd"] > 0
    assert again.moa["cache"]["hit"] is True
    assert again.moa["cache"]["saved_usd"] == first.moa["cost_usd"]
    assert first.usage is not None and first.usage["cost"] == first.moa["cost_usd"]
    saved_tokens = {name: count for name, count in first.usage.items() if name != "cost"}
    assert again.moa["cache"]["saved_usage"] == saved_tokens
    assert again.moa["answered_by"] == "omega"


def test_a_hit_reports_the_agreement_of_the_run_that_made_its_answer(servers: Servers) -> None:
    """Every pipeline response says how far its proposals agreed (issue 26); a hit's answer is the
    stored run's, so it says what that run measured, as JSON and as a stream."""
    asked = question()
    first = ask(servers.url, KEY_A, "cached", asked)
    servers.recorder.clear()

    again = ask(servers.url, KEY_A, "cached", asked)
    streamed = ask_streamed(servers.url, KEY_A, "cached", asked)

    assert servers.calls() == 0 and again.cache == streamed.cache == "hit"
    assert first.moa["agreement"]["proposals"] == 3
    assert again.moa["agreement"] == streamed.moa["agreement"] == first.moa["agreement"]


def test_a_hit_is_replayed_as_a_stream_with_the_same_text(servers: Servers) -> None:
    asked = question()
    streamed = ask_streamed(servers.url, KEY_A, "cached", asked)
    assert streamed.cache == "miss"
    servers.recorder.clear()

    replayed = ask_streamed(servers.url, KEY_A, "cached", asked)

    assert servers.calls() == 0
    assert replayed.cache == "hit"
    assert replayed.text == streamed.text and replayed.text
    assert replayed.usage == ZERO_USAGE
    assert replayed.moa["cache"]["saved_usd"] == streamed.moa["cost_usd"] > 0


def test_a_json_answer_replays_as_a_stream(servers: Servers) -> None:
    """`stream` is not part of the key: the answer is the same, only its framing differs."""
    asked = question()
    stored = ask(servers.url, KEY_A, "cached", asked)
    servers.recorder.clear()

    replayed = ask_streamed(servers.url, KEY_A, "cached", asked)

    assert servers.calls() == 0
    assert replayed.cache == "hit" and replayed.text == stored.text


def test_another_gateway_key_never_reads_the_answer(servers: Servers) -> None:
    asked = question()
    ask(servers.url, KEY_A, "cached", asked)
    servers.recorder.clear()

    other = ask(servers.url, KEY_B, "cached", asked)

    assert other.cache == "miss"
    assert servers.calls() == 4
    assert "cache" not in other.moa


def test_a_field_that_changes_the_answer_misses_and_one_that_cannot_hits(servers: Servers) -> None:
    asked = question()
    ask(servers.url, KEY_A, "cached", asked, temperature=0.2, user="alice")

    warmer = ask(servers.url, KEY_A, "cached", asked, temperature=0.9, user="alice")
    seeded = ask(servers.url, KEY_A, "cached", asked, temperature=0.2, seed=7, user="alice")
    other_user = ask(servers.url, KEY_A, "cached", asked, temperature=0.2, user="bob")

    assert (warmer.cache, seeded.cache, other_user.cache) == ("miss", "miss", "hit")


def test_an_answer_expires_after_its_ttl(servers: Servers) -> None:
    asked = question()
    ask(servers.url, KEY_A, "brief", asked)
    assert ask(servers.url, KEY_A, "brief", asked).cache == "hit"
    time.sleep(0.6)  # the pipeline's ttl_s is 0.5
    servers.recorder.clear()

    expired = ask(servers.url, KEY_A, "brief", asked)

    assert expired.cache == "miss"
    assert servers.calls() == 4


def test_moa_cache_false_bypasses_the_cache(servers: Servers) -> None:
    asked = question()
    ask(servers.url, KEY_A, "cached", asked)
    servers.recorder.clear()

    bypassed = ask(servers.url, KEY_A, "cached", asked, extra_body={"moa": {"cache": False}})
    streamed = ask_streamed(servers.url, KEY_A, "cached", asked, extra_body={"moa": {"cache": False}})

    assert (bypassed.cache, streamed.cache) == ("bypass", "bypass")
    assert servers.calls() == 8
    # nor is a bypassing request's answer stored
    fresh = question()
    ask(servers.url, KEY_A, "cached", fresh, extra_body={"moa": {"cache": False}})
    assert ask(servers.url, KEY_A, "cached", fresh).cache == "miss"


def test_a_pipeline_without_a_cache_always_runs(servers: Servers) -> None:
    asked = question()
    first = ask(servers.url, KEY_A, "plain", asked)
    second = ask(servers.url, KEY_A, "plain", asked)

    assert (first.cache, second.cache) == ("bypass", "bypass")
    assert servers.calls() == 8


def test_a_model_alias_with_a_cache_is_cached_when_asked_directly(servers: Servers) -> None:
    asked = question()
    first = ask(servers.url, KEY_A, "omega", asked)
    again = ask(servers.url, KEY_A, "omega", asked)

    assert (first.cache, again.cache) == ("miss", "hit")
    assert servers.calls() == 1
    assert again.text == first.text


def test_a_degraded_answer_is_not_stored(servers: Servers) -> None:
    asked = question()
    first = ask(servers.url, KEY_A, "degraded", asked)
    assert first.moa["degraded"] == "aggregator_failed"

    again = ask(servers.url, KEY_A, "degraded", asked)

    assert (first.cache, again.cache) == ("miss", "miss")


def test_hits_misses_and_savings_are_counted(servers: Servers) -> None:
    hits, misses = (
        servers.metric("moa_cache_hits_total", model="cached"),
        servers.metric("moa_cache_misses_total", model="cached"),
    )
    saved = servers.metric("moa_cache_saved_usd_total", model="cached")
    asked = question()
    first = ask(servers.url, KEY_A, "cached", asked)
    ask(servers.url, KEY_A, "cached", asked)
    ask(servers.url, KEY_A, "cached", asked)

    assert servers.metric("moa_cache_misses_total", model="cached") == misses + 1
    assert servers.metric("moa_cache_hits_total", model="cached") == hits + 2
    assert servers.metric("moa_cache_saved_usd_total", model="cached") == pytest.approx(
        saved + 2 * first.moa["cost_usd"]
    )
    assert servers.metric("moa_cache_bytes") > 0


def test_legacy_completions_use_the_cache_too(servers: Servers) -> None:
    prompt = question()
    body = {"model": "cached", "prompt": prompt, "max_tokens": 50}
    headers = {"authorization": f"Bearer {KEY_A}"}
    first = httpx.post(f"{servers.url}/v1/completions", json=body, headers=headers, timeout=10)
    servers.recorder.clear()
    again = httpx.post(f"{servers.url}/v1/completions", json=body, headers=headers, timeout=10)

    assert (first.headers["x-moa-cache"], again.headers["x-moa-cache"]) == ("miss", "hit")
    assert again.json()["choices"][0]["text"] == first.json()["choices"][0]["text"]
    assert servers.calls() == 0


def test_a_legacy_completion_hit_streams_through_the_driver_with_its_header(servers: Servers) -> None:
    prompt = question()
    body = {"model": "cached", "prompt": prompt, "max_tokens": 50}
    headers = {"authorization": f"Bearer {KEY_A}"}
    first = httpx.post(f"{servers.url}/v1/completions", json=body, headers=headers, timeout=10)
    servers.recorder.clear()

    streamed = httpx.post(
        f"{servers.url}/v1/completions", json={**body, "stream": True}, headers=headers, timeout=10
    )

    frames = [line.removeprefix("data: ") for line in streamed.text.splitlines() if line.startswith("data: ")]
    text = "".join(orjson.loads(f)["choices"][0]["text"] for f in frames[:-1] if orjson.loads(f)["choices"])
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert (first.headers["x-moa-cache"], streamed.headers["x-moa-cache"]) == ("miss", "hit")
    assert frames[-1] == "[DONE]" and text == first.json()["choices"][0]["text"]
    assert servers.calls() == 0


WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_a_tool_call_is_replayed_as_a_stream_the_sdk_reassembles(servers: Servers) -> None:
    messages: Any = [{"role": "user", "content": f"What is the weather in Oslo? ({question()})"}]
    with client(servers.url, KEY_A) as sdk:
        stored = sdk.chat.completions.create(model="cached", messages=messages, tools=[WEATHER_TOOL])
        assert stored.choices[0].finish_reason == "tool_calls"
        servers.recorder.clear()
        with sdk.chat.completions.stream(model="cached", messages=messages, tools=[WEATHER_TOOL]) as stream:
            replayed = stream.get_final_completion()

    assert servers.calls() == 0
    (call,) = [c.model_dump() for c in stored.choices[0].message.tool_calls or []]
    (again,) = [c.model_dump() for c in replayed.choices[0].message.tool_calls or []]
    assert (again["id"], again["function"]["name"], again["function"]["arguments"]) == (
        call["id"],
        call["function"]["name"],
        call["function"]["arguments"],
    )
    assert replayed.choices[0].finish_reason == "tool_calls"
