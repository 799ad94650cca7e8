"""Live layer events (`moa.stream_events`) through a real gateway in front of the real simulator: what
the official openai SDK makes of the stream with and without them, and the raw event frames."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.support.asks import ASK
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread
from tests.support.showcase import showcase_config

LIVE = {"moa": {"stream_events": True}}


@pytest.fixture(scope="module")
def gateway(sim_server: ServerThread) -> Iterator[ServerThread]:
    with serve_gateway(showcase_config(sim_server.url)) as server:
        yield server


@pytest.fixture
def client(gateway: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as c:
        yield c


def raw_stream(gateway: ServerThread, body: dict[str, Any]) -> tuple[int, list[Any]]:
    """Status, and every `data:` payload of the stream, decoded (`[DONE]` as the string)."""
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=20) as response:
        text = response.read().decode()
    payloads: list[Any] = []
    for block in text.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                data = line.removeprefix("data: ")
                payloads.append(data if data == "[DONE]" else orjson.loads(data))
    return response.status_code, payloads


def events_in(payloads: list[Any]) -> list[dict[str, Any]]:
    return [e for p in payloads if isinstance(p, dict) for e in p.get("moa_events", [])]


def test_the_sdk_without_opt_in_sees_no_events(gateway: ServerThread, client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="moa", messages=ASK, stream=True, stream_options={"include_usage": True}
        )
    )

    assert all("moa_events" not in (c.model_extra or {}) for c in chunks)
    assert sum(1 for c in chunks if not c.choices) == 1  # the usage chunk only
    status, payloads = raw_stream(gateway, {"model": "moa", "messages": ASK, "stream": True})
    assert status == 200 and events_in(payloads) == []
    assert all(p["choices"] for p in payloads if isinstance(p, dict))


def test_the_sdk_with_opt_in_parses_every_chunk_and_gets_the_same_answer(client: openai.OpenAI) -> None:
    plain = list(client.chat.completions.create(model="moa", messages=ASK, stream=True))
    live = list(
        client.chat.completions.create(
            model="moa",
            messages=ASK,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=LIVE,
        )
    )

    def text(chunks: list[Any]) -> str:
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    assert text(live) == text(plain) and text(live).startswith("[omega] Synthesis of 3 responses")
    events = [e for c in live for e in (c.model_extra or {}).get("moa_events", [])]
    assert events[0] == {"type": "run.started", "model": "moa", "pipeline": "moa", "layers": 2}
    assert events[-1]["type"] == "run.finished"
    assert all(not c.choices for c in live if (c.model_extra or {}).get("moa_events"))


def test_events_tell_each_layer_each_proposers_text_and_each_calls_numbers(
    gateway: ServerThread, client: openai.OpenAI
) -> None:
    status, payloads = raw_stream(
        gateway,
        {
            "model": "moa",
            "messages": ASK,
            "stream": True,
            "stream_options": {"include_usage": True},
            **LIVE,
        },
    )

    assert status == 200 and payloads[-1] == "[DONE]"
    events = events_in(payloads)
    kinds = [e["type"] for e in events]
    assert kinds.count("layer.started") == kinds.count("layer.finished") == 2
    assert kinds.count("call.started") == kinds.count("call.finished") == 7
    # Each proposer's deltas, joined, are the answer it gave (the same as `include_proposals` shows).
    texts: dict[tuple[int, int], str] = {}
    for event in events:
        if event["type"] == "call.delta":
            assert event["role"] == "proposer"
            key = (event["layer"], event["slot"])
            texts[key] = texts.get(key, "") + event["text"]
    answer = client.chat.completions.create(
        model="moa", messages=ASK, extra_body={"moa": {"include_proposals": True}}
    )
    proposals = [c for c in (answer.model_extra or {})["moa"]["calls"] if c["role"] == "proposer"]
    assert sorted(texts.values()) == sorted(c["text"] for c in proposals)
    assert texts[1, 0].startswith("[alpha] On 'Why is the sky blue?'")
    finished = [e for e in events if e["type"] == "call.finished"]
    for call in finished:
        assert call["status"] == "ok"
        assert call["latency_ms"] > 0 and call["ttft_ms"] is not None and call["ttft_ms"] > 0
        assert call["prompt_tokens"] > 0 and call["completion_tokens"] > 0 and call["cost_usd"] > 0
        assert call["at_ms"] >= call["latency_ms"] * 0.9  # at_ms counts from the run's start
    # The aggregator starts before its first token is sent, and ends after its last.
    first_content = next(i for i, p in enumerate(payloads) if _content(p))
    last_content = max(i for i, p in enumerate(payloads) if _content(p))
    aggregator_start = next(i for i, p in enumerate(payloads) if _has(p, "call.started", "aggregator"))
    aggregator_end = next(i for i, p in enumerate(payloads) if _has(p, "call.finished", "aggregator"))
    assert aggregator_start < first_content <= last_content < aggregator_end
    usage_chunk = next(p for p in payloads if isinstance(p, dict) and p.get("usage"))
    run_finished = events[-1]
    assert run_finished["type"] == "run.finished"
    assert run_finished["cost_usd"] == usage_chunk["moa"]["cost_usd"]
    assert run_finished["usage"] == usage_chunk["usage"]


def _content(payload: Any) -> bool:
    return isinstance(payload, dict) and any(c["delta"].get("content") for c in payload.get("choices", []))


def _has(payload: Any, kind: str, role: str) -> bool:
    return isinstance(payload, dict) and any(
        e["type"] == kind and e.get("role") == role for e in payload.get("moa_events", [])
    )


def test_a_failed_proposer_a_fallback_and_a_drop_are_told_where_they_happened(gateway: ServerThread) -> None:
    status, payloads = raw_stream(gateway, {"model": "shaky", "messages": ASK, "stream": True, **LIVE})

    assert status == 200
    events = events_in(payloads)
    slot_1 = [(e["type"], e["model"]) for e in events if e.get("slot") == 1 and e.get("layer") == 1]
    assert [step for step in slot_1 if step[0] != "call.delta"] == [
        ("call.started", "broken"),
        ("call.finished", "broken"),
        ("call.started", "gamma"),
        ("call.finished", "gamma"),
    ]
    ends = {(e["slot"], e["model"]): e for e in events if e["type"] == "call.finished" and e["layer"] == 1}
    assert ends[1, "broken"]["status"] == "error" and ends[1, "broken"]["error_code"] == "upstream_error"
    assert ends[1, "gamma"]["status"] == "ok" and ends[1, "gamma"]["fallback_for"] == "broken"
    assert ends[2, "flaky"]["status"] == "error" and "flaky" in ends[2, "flaky"]["error"]
    layer = next(e for e in events if e["type"] == "layer.finished")
    assert layer["answered"] == ["alpha", "gamma"] and layer["dropped"] == ["flaky"]
    assert events[-1]["type"] == "run.finished" and events[-1]["dropped"] == ["flaky"]


def test_live_events_need_a_stream(gateway: ServerThread) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json={"model": "moa", "messages": ASK, **LIVE}, timeout=10
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "moa.stream_events"


def test_a_run_that_fails_at_once_keeps_its_status_with_live_events(gateway: ServerThread) -> None:
    body = {
        "model": "moa",
        "messages": ASK,
        "stream": True,
        "moa": {"stream_events": True, "layers": [["flaky"]]},
    }

    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=10)

    assert response.status_code == 502
    assert "flaky" in response.json()["error"]["message"]
