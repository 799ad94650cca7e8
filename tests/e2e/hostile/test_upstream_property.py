"""Property-based: whatever a broken upstream answers (JSON of the wrong shape or types, negative or huge
numbers, garbage bytes, error statuses, event streams cut anywhere), the gateway never answers 500,
never hangs, and records every failed call: in `moa.calls` with an error code, and in the metrics.

One long-lived raw upstream serves the answer each example sets for the model `victim`; the gateway
path is the real one (uvicorn, the shared httpx client, a socket).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moa_gateway.settings import Settings
from tests.support.asks import ASK
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape
from tests.support.raw_upstream import RawUpstream, head, post_within, raw
from tests.support.servers import ServerThread

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CLIENT_TIMEOUT_S = 10.0  # a hang fails the example; the provider's own timeout_s is 2 s

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
anything = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
counts = st.integers(-10, 100) | st.integers(2**31, 2**64) | anything
usage = st.fixed_dictionaries(
    {},
    optional={
        "prompt_tokens": counts,
        "completion_tokens": counts,
        "total_tokens": counts,
        "prompt_tokens_details": st.fixed_dictionaries({}, optional={"cached_tokens": counts}) | anything,
    },
)
finish = st.sampled_from(["stop", "length", None, ""]) | anything
message = st.fixed_dictionaries(
    {}, optional={"role": st.just("assistant") | anything, "content": st.text(max_size=20) | anything}
)
choice = st.fixed_dictionaries(
    {}, optional={"index": st.just(0) | anything, "message": message | anything, "finish_reason": finish}
)
completion = st.fixed_dictionaries(
    {},
    optional={
        "object": st.just("chat.completion") | anything,
        "choices": st.lists(choice | anything, max_size=3) | anything,
        "usage": usage | anything,
    },
)
delta = st.fixed_dictionaries(
    {}, optional={"role": st.just("assistant") | anything, "content": st.text(max_size=10) | anything}
)
stream_choice = st.fixed_dictionaries(
    {}, optional={"index": st.just(0) | anything, "delta": delta | anything, "finish_reason": finish}
)
stream_chunk = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.lists(stream_choice | anything, max_size=2) | anything,
        "usage": usage | st.none(),
        "error": st.just({"message": "overloaded"}) | anything,
    },
)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def event(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


json_answers = st.one_of(
    completion.map(json_bytes),
    anything.map(json_bytes),
    st.binary(max_size=100),
    st.tuples(completion.map(json_bytes), st.floats(0, 1)).map(lambda t: t[0][: int(len(t[0]) * t[1])]),
)
frames = st.lists(
    st.one_of(
        stream_chunk.map(lambda c: event(json_bytes(c))),
        st.just(event(b"[DONE]")),
        st.just(b": keep-alive\n\n"),
        st.binary(max_size=30),
        anything.map(lambda v: event(json_bytes(v))),
    ),
    max_size=6,
)


@st.composite
def http_answers(draw: st.DrawFn, body: bytes, content_type: str) -> bytes:
    """`body` as an HTTP answer: status, headers, maybe gzip (right or wrong), maybe cut short."""
    status = draw(
        st.sampled_from([b"200 OK"] * 6 + [b"201 Created", b"400 Bad Request", b"429 Too Many", b"500 Oops"])
    )
    headers = [("content-type", draw(st.sampled_from([content_type, content_type, "text/html"])))]
    encoding = draw(st.sampled_from([None, None, "gzip", "gzip-lie"]))
    if encoding == "gzip":
        body = gzip.compress(body)
    if encoding is not None:
        headers.append(("content-encoding", "gzip"))
    if draw(st.booleans()):
        headers.append(("content-length", str(len(body) + draw(st.sampled_from([0, 0, 5])))))
    if draw(st.booleans()):  # cut short
        body = body[: draw(st.integers(0, len(body)))]
    return head(status, headers) + body


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawUpstream]:
    with RawUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream: RawUpstream) -> Iterator[ServerThread]:
    provider = {
        "type": "openai",
        "base_url": f"{upstream.url}/v1",
        "timeout_s": 2,
        "idle_timeout_s": 1,
        "retries": {"max_attempts": 2, "base_delay_s": 0.01},
    }
    config = {
        "providers": {"raw": provider},
        "models": {
            **{name: {"provider": "raw"} for name in ["alpha", "omega"]},
            # Its breaker off: every example must reach it, however many failed before.
            "victim": {"provider": "raw", "circuit_breaker": {"failure_threshold": 0}},
        },
        "pipelines": {
            "p-victim": {"layers": [{"proposers": ["alpha", "victim"]}], "aggregator": "omega"},
            "a-victim": {"layers": [{"proposers": ["alpha"]}], "aggregator": "victim"},
        },
    }
    settings_ = Settings(upstream_max_body_bytes=64 * 1024, upstream_max_event_bytes=16 * 1024)
    with serve_gateway(config, settings_) as server:
        yield server


def victim_failures(gateway: ServerThread) -> tuple[float, float]:
    """The victim's failed calls, as the two metrics count them."""
    metrics = Scrape(httpx.get(f"{gateway.url}/metrics", timeout=5).text)
    errors = metrics.value("moa_upstream_errors_total", model="victim")
    failed = sum(
        metrics.value("moa_upstream_request_duration_seconds_count", model="victim", outcome=outcome)
        for outcome in ("error", "timeout")
    )
    return errors, failed


def ask(gateway: ServerThread, model: str, stream: bool) -> httpx.Response:
    body = {"model": model, "messages": ASK, "stream": stream, "stream_options": {"include_usage": True}}
    if not stream:
        body.pop("stream_options")
    return post_within(f"{gateway.url}/v1/chat/completions", body, CLIENT_TIMEOUT_S)


@PROPERTY
@given(data=st.data(), body=json_answers)
def test_a_malformed_proposer_answer_fails_only_its_call(
    gateway: ServerThread, upstream: RawUpstream, data: st.DataObject, body: bytes
) -> None:
    upstream.scripts["victim"] = raw(data.draw(http_answers(body, "application/json")))
    before = victim_failures(gateway)

    response = ask(gateway, "p-victim", stream=False)

    assert response.status_code == 200, response.text  # alpha answered: the quorum of 1 holds
    calls = [c for c in response.json()["moa"]["calls"] if c["model"] == "victim"]
    assert calls and all(c["status"] in ("ok", "error") for c in calls)
    (call,) = calls
    errors, failed = victim_failures(gateway)
    if call["status"] == "error":
        assert call["error_code"] and call["error"].startswith("model victim: ")
        assert errors > before[0] and failed == before[1] + 1
    else:
        assert failed == before[1]


@PROPERTY
@given(data=st.data(), events=frames)
def test_a_malformed_streamed_aggregator_never_breaks_the_stream(
    gateway: ServerThread, upstream: RawUpstream, data: st.DataObject, events: list[bytes]
) -> None:
    upstream.scripts["victim"] = raw(data.draw(http_answers(b"".join(events), "text/event-stream")))
    before = victim_failures(gateway)

    response = ask(gateway, "a-victim", stream=True)

    assert response.status_code in (200, 400, 502, 504), response.text
    errors, failed = victim_failures(gateway)
    if response.status_code != 200:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["message"].startswith("model victim: ")
        assert errors > before[0] and failed == before[1] + 1
        return
    payloads = [b.removeprefix("data: ") for b in response.text.split("\n\n") if b.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    last = json.loads(payloads[-2])
    if "error" in last:
        assert last["error"]["message"].startswith("model victim: ")
        assert last["error"]["code"] in ("upstream_error", "upstream_timeout")
        assert errors > before[0] and failed == before[1] + 1
    else:
        (call,) = [c for c in last["moa"]["calls"] if c["model"] == "victim"]
        assert call["status"] == "ok" and failed == before[1]
