"""The gateway against a broken or hostile upstream, over real HTTP: the gateway under uvicorn, a raw
scripted upstream on 127.0.0.1 serving each malformed answer. A malformed answer fails its one call
(`bad_response`, not retried, recorded in `moa.calls` and the metrics) and the request goes on; a
request the gateway cannot encode is the client's 400 and never counts against a model; never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from moa_gateway.config import parse_config
from moa_gateway.settings import Settings
from tests.support.asks import ASK
from tests.support.gateways import serve_gateway
from tests.support.metrics import scrape
from tests.support.raw_upstream import (
    ROLE,
    SSE_HEAD,
    RawUpstream,
    Script,
    body,
    chunk,
    completion,
    frame,
    head,
    json_body,
    post_within,
    raw,
    sse,
)
from tests.support.servers import ServerThread

TRANSPORTS = ["httptools", "aiohttp", "httpx"]
LIMITS: dict[str, Any] = {
    "upstream_max_body_bytes": 64 * 1024,
    "upstream_max_event_bytes": 16 * 1024,
    "upstream_max_stream_bytes": 256 * 1024,
}
TRICKLE_TIMEOUT_S = 1.0
DEEP: Any = {"type": "json_object"}
for _ in range(300):  # parses (orjson reads 1024 levels) but does not encode again (255)
    DEEP = {"nested": DEEP}


async def endless_trickle(request: dict[str, Any]) -> AsyncIterator[bytes]:
    """A token every 200 ms forever: each gap is within the idle timeout, only timeout_s stops it."""
    yield SSE_HEAD + ROLE
    while True:
        await asyncio.sleep(0.2)
        yield frame(chunk({"content": "tick "}))


async def body_trickle(request: dict[str, Any]) -> AsyncIterator[bytes]:
    """A non-streamed body promised whole, sent a byte every 200 ms."""
    yield head(headers=[("content-type", "application/json"), ("content-length", "100000")])
    while True:
        await asyncio.sleep(0.2)
        yield b" "


def gzip_bomb(decoded_bytes: int) -> bytes:
    return gzip.compress(b"{" + b" " * decoded_bytes, compresslevel=9)


FLOOD = frame(chunk({"content": "a" * 4000}))
BOMB_SSE = gzip.compress(ROLE + FLOOD * 1000, compresslevel=9)  # 4 MB of events

# model -> (its answer, a fragment of the error its call records). Served as proposers, not streamed.
PROPOSER_CASES: dict[str, tuple[Script, str]] = {
    "usage-negative": (
        json_body(completion("x", usage={"prompt_tokens": -5, "completion_tokens": 1})),
        "usage.prompt_tokens is not a token count: -5",
    ),
    "usage-text": (
        json_body(completion("x", usage={"prompt_tokens": 5, "completion_tokens": "abc"})),
        "usage.completion_tokens is not a token count: 'abc'",
    ),
    "usage-float": (
        json_body(completion("x", usage={"prompt_tokens": 1.5, "completion_tokens": 1})),
        "usage.prompt_tokens is not a token count: 1.5",
    ),
    "usage-bool": (
        json_body(completion("x", usage={"prompt_tokens": 3, "completion_tokens": True})),
        "usage.completion_tokens is not a token count: True",
    ),
    "usage-huge": (
        json_body(completion("x", usage={"prompt_tokens": 2**63 - 1, "completion_tokens": 1})),
        "usage.prompt_tokens is not a token count",
    ),
    "content-not-string": (json_body(completion({"text": "x"})), "message.content is not a string: a dict"),
    "choices-not-list": (
        json_body({"choices": {"0": {"message": {"content": "x"}}}}),
        "choices is not a non-empty list",
    ),
    "bad-status-line": (
        raw(b"HTTP/1.1 abc OK\r\ncontent-length: 2\r\n\r\n{}"),
        "the provider sent a malformed HTTP response",
    ),
    "garbage-status-line": (
        raw(b"\x00\x01\x02garbage\r\n\r\n"),
        "the provider sent a malformed HTTP response",
    ),
    "huge-header": (
        raw(head(headers=[("x-big", "a" * 200_000), ("content-length", "2")]) + b"{}"),
        "the provider sent a malformed HTTP response",
    ),
    "oversized-body": (
        json_body(completion("a" * 100_000)),
        "the answer is over the limit of 65536 bytes (MOA_UPSTREAM_MAX_BODY_BYTES)",
    ),
    "gzip-bomb": (
        body(gzip_bomb(4 * 1024 * 1024), encoding="gzip"),
        "the answer is over the limit of 65536 bytes",
    ),
    "bad-gzip": (body(b"not gzip at all", encoding="gzip"), "a body that cannot be decoded"),
    "cut-body": (raw(head(headers=[("content-length", "4")]) + b'{"ch'), "a body that is not JSON"),
}

# model -> (its answer, expected outcome, error fragment). Served as the streamed aggregator.
# "502"/"504": a JSON error before any byte; "200+502"/"200+504": tokens, then an in-band error.
STREAM_CASES: dict[str, tuple[Script, str, str]] = {
    "stream-content-not-string": (
        sse(ROLE, frame(chunk({"content": 5})), frame(chunk({}, "stop")), frame(b"[DONE]")),
        "502",
        "delta.content is not a string: 5",
    ),
    "stream-choices-not-list": (
        sse(frame({"choices": "abc"}), frame(b"[DONE]")),
        "502",
        "choices is not a list",
    ),
    "stream-finish-not-string": (
        sse(ROLE, frame(chunk({}, {"why": "stop"})), frame(b"[DONE]")),
        "502",
        "finish_reason is not a string",
    ),
    "stream-huge-line": (
        sse(ROLE, b"data: " + b"a" * 40_000 + b"\n\n"),
        "502",
        "a stream line is over the limit of 16384 bytes",
    ),
    "stream-huge-event": (
        sse(ROLE, b"data: " + b"a" * 9000 + b"\n" + b"data: " + b"b" * 9000 + b"\n" * 2 + b"data: c\n\n"),
        "502",
        "a stream event is over the limit of 16384 bytes",
    ),
    "stream-oversized": (
        sse(ROLE, frame(chunk({"content": "Hello"})), *[FLOOD] * 100, frame(chunk({}, "stop"))),
        "200+502",
        "the stream is over the limit of 262144 bytes",
    ),
    "stream-gzip-bomb": (
        # Inflated in steps: the first events reach the client before the limit is passed.
        raw(head(headers=[("content-type", "text/event-stream"), ("content-encoding", "gzip")]) + BOMB_SSE),
        "200+502",
        "the stream is over the limit of 262144 bytes",
    ),
    "stream-usage-malformed": (
        sse(
            ROLE,
            frame(chunk({"content": "Hello"})),
            frame(chunk({}, "stop")),
            frame({"choices": [], "usage": {"prompt_tokens": "abc"}}),
            frame(b"[DONE]"),
        ),
        "200+502",
        "usage.prompt_tokens is not a token count: 'abc'",
    ),
    "truncated-before": (sse(ROLE), "502", "the stream ended before the answer was complete"),
    "truncated-after": (
        sse(ROLE, frame(chunk({"content": "Hello"}))),
        "200+502",
        "the stream ended before the answer was complete (no finish_reason, no [DONE])",
    ),
    "stream-not-sse": (json_body(completion("x")), "502", "did not answer with an event stream"),
}
TRICKLING = {"endless-trickle": endless_trickle, "body-trickle": body_trickle}
# Complete streams: either end mark is enough.
COMPLETE_STREAMS: dict[str, tuple[Script, str]] = {
    "done-only": (sse(ROLE, frame(chunk({"content": "Hello"})), frame(b"[DONE]")), "stop"),
    "finish-only": (sse(ROLE, frame(chunk({"content": "Hello"})), frame(chunk({}, "length"))), "length"),
}


def hostile_config(url: str) -> dict[str, Any]:
    fast = {"retries": {"max_attempts": 2, "base_delay_s": 0.01}}
    providers = {
        "hostile": {"type": "openai", "base_url": f"{url}/v1", "timeout_s": 5, **fast},
        "trickle": {
            "type": "openai",
            "base_url": f"{url}/v1",
            "timeout_s": TRICKLE_TIMEOUT_S,
            "idle_timeout_s": 0.5,
            **fast,
        },
    }
    models: dict[str, Any] = {name: {"provider": "hostile"} for name in ["alpha", "beta", "omega"]}
    models |= {name: {"provider": "hostile"} for name in [*PROPOSER_CASES, *STREAM_CASES, *COMPLETE_STREAMS]}
    models |= {name: {"provider": "trickle"} for name in TRICKLING}
    models["flaky"] = {"provider": "hostile", "circuit_breaker": {"failure_threshold": 1, "cooldown_s": 0.3}}
    pipelines: dict[str, Any] = {
        "healthy": {"layers": [{"proposers": ["alpha", "beta"]}], "aggregator": "omega"}
    }
    for name in [*PROPOSER_CASES, *TRICKLING, "flaky"]:
        pipelines[f"p-{name}"] = {"layers": [{"proposers": ["alpha", name]}], "aggregator": "omega"}
    for name in [*STREAM_CASES, *TRICKLING, *COMPLETE_STREAMS]:
        pipelines[f"a-{name}"] = {"layers": [{"proposers": ["alpha"]}], "aggregator": name}
    pipelines["a-truncated-before-fallback"] = {
        "layers": [{"proposers": ["alpha"]}],
        "aggregator": "truncated-before",
        "aggregator_fallbacks": ["omega"],
    }
    return {"providers": providers, "models": models, "pipelines": pipelines}


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawUpstream]:
    scripts = {name: script for name, (script, _) in PROPOSER_CASES.items()}
    scripts |= {name: script for name, (script, _, _) in STREAM_CASES.items()}
    scripts |= TRICKLING
    scripts |= {name: script for name, (script, _) in COMPLETE_STREAMS.items()}
    with RawUpstream(scripts) as server:
        yield server


@pytest.fixture(scope="module")
def gateways(upstream: RawUpstream) -> Iterator[dict[str, ServerThread]]:
    config = parse_config(hostile_config(upstream.url), "hostile")
    with contextlib.ExitStack() as stack:
        yield {
            transport: stack.enter_context(
                serve_gateway(config, Settings(upstream_transport=transport, **LIMITS))
            )
            for transport in TRANSPORTS
        }


def post(gateway: ServerThread, model: str, *, stream: bool = False, **extra: Any) -> httpx.Response:
    request = {"model": model, "messages": ASK, "stream": stream, **extra}
    return post_within(f"{gateway.url}/v1/chat/completions", request)


def sse_payloads(text: str) -> list[str]:
    return [block.removeprefix("data: ") for block in text.split("\n\n") if block.startswith("data: ")]


class Recorded:
    """The failure counters of one model, before and after: each failed call must show in both."""

    def __init__(self, gateway: ServerThread, model: str, kind: str, outcome: str = "error") -> None:
        self.gateway, self.model, self.kind, self.outcome = gateway, model, kind, outcome
        self.before = self._counts()

    def _counts(self) -> tuple[float, float]:
        metrics = scrape(self.gateway.url)
        return (
            metrics.value("moa_upstream_errors_total", model=self.model, kind=self.kind),
            metrics.value(
                "moa_upstream_request_duration_seconds_count", model=self.model, outcome=self.outcome
            ),
        )

    def moved(self) -> tuple[float, float]:
        after = self._counts()
        return after[0] - self.before[0], after[1] - self.before[1]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("model", PROPOSER_CASES)
def test_a_malformed_answer_drops_that_proposer_only(
    gateways: dict[str, ServerThread], upstream: RawUpstream, transport: str, model: str
) -> None:
    gateway = gateways[transport]
    recorded = Recorded(gateway, model, "bad_response")
    asked = upstream.seen.count(model)

    response = post(gateway, f"p-{model}")

    assert response.status_code == 200, response.text
    moa = response.json()["moa"]
    assert moa["dropped"] == [model]
    (call,) = [c for c in moa["calls"] if c["model"] == model]
    assert call["status"] == "error" and call["error_code"] == "upstream_error"
    assert call["error"].startswith(f"model {model}: ")
    assert PROPOSER_CASES[model][1] in call["error"]
    assert [c["model"] for c in moa["calls"] if c["status"] == "ok"] == ["alpha", "omega"]
    assert recorded.moved() == (1, 1)
    assert upstream.seen.count(model) == asked + 1, "a bad_response is not retried"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("model", STREAM_CASES)
def test_a_malformed_streamed_aggregator_fails_as_documented(
    gateways: dict[str, ServerThread], transport: str, model: str
) -> None:
    gateway = gateways[transport]
    _, expected, fragment = STREAM_CASES[model]
    kind = "mid_stream" if model.startswith("truncated") else "bad_response"
    recorded = Recorded(gateway, model, kind)

    response = post(gateway, f"a-{model}", stream=True)

    if expected.startswith("200+"):
        assert response.status_code == 200, response.text
        payloads = sse_payloads(response.text)
        assert payloads[-1] == "[DONE]"
        assert any('"content":"Hello"' in p or '"content":"aaaa' in p for p in payloads), "tokens came first"
        error = json.loads(payloads[-2])["error"]
    else:
        assert response.status_code == int(expected), response.text
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "upstream_error" and error["type"] == "upstream_error"
    assert error["message"].startswith(f"model {model}: ") and fragment in error["message"]
    assert recorded.moved() == (1, 1)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_stream_truncated_before_its_first_token_falls_back(
    gateways: dict[str, ServerThread], transport: str
) -> None:
    response = post(gateways[transport], "a-truncated-before-fallback", stream=True)

    assert response.status_code == 200, response.text
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]" and not any('"error"' in p for p in payloads)
    assert any('"content":"answer of omega"' in p for p in payloads)


@pytest.mark.parametrize("model", COMPLETE_STREAMS)
def test_a_stream_with_either_end_mark_is_complete(gateways: dict[str, ServerThread], model: str) -> None:
    response = post(gateways["httptools"], f"a-{model}", stream=True)

    assert response.status_code == 200
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]" and not any('"error"' in p for p in payloads)
    finish = [
        c["finish_reason"] for p in payloads[:-1] for c in json.loads(p)["choices"] if c["finish_reason"]
    ]
    assert finish == [COMPLETE_STREAMS[model][1]]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_endless_trickle_is_stopped_by_timeout_s(
    gateways: dict[str, ServerThread], transport: str
) -> None:
    gateway = gateways[transport]
    recorded = Recorded(gateway, "endless-trickle", "timeout", outcome="timeout")
    started = time.monotonic()

    response = post(gateway, "a-endless-trickle", stream=True)

    elapsed = time.monotonic() - started
    assert response.status_code == 200
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    assert any('"content":"tick' in p for p in payloads), "tokens came before the deadline"
    error = json.loads(payloads[-2])["error"]
    assert error["code"] == "upstream_timeout"
    assert error["message"] == f"model endless-trickle: no complete answer within {TRICKLE_TIMEOUT_S:g}s"
    assert TRICKLE_TIMEOUT_S <= elapsed < TRICKLE_TIMEOUT_S + 1.5
    assert recorded.moved() == (1, 1)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_body_sent_a_byte_at_a_time_is_stopped_by_timeout_s(
    gateways: dict[str, ServerThread], transport: str
) -> None:
    started = time.monotonic()

    response = post(gateways[transport], "p-body-trickle")

    assert response.status_code == 200, response.text
    assert time.monotonic() - started < TRICKLE_TIMEOUT_S + 1.5
    (call,) = [c for c in response.json()["moa"]["calls"] if c["model"] == "body-trickle"]
    assert call["error_code"] == "upstream_timeout"
    assert call["error"] == f"model body-trickle: no answer within {TRICKLE_TIMEOUT_S:g}s"


@pytest.mark.parametrize("where", ["response_format", "message"])
def test_unencodable_streamed_requests_are_400s_and_do_not_open_a_circuit(
    gateways: dict[str, ServerThread], where: str
) -> None:
    gateway = gateways["httptools"]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "hi", **({"extra": DEEP} if where == "message" else {})}
    ]
    extra = {"response_format": DEEP} if where == "response_format" else {}

    for _ in range(5):  # the default failure threshold
        response = post_within(
            f"{gateway.url}/v1/chat/completions",
            {"model": "healthy", "messages": messages, "stream": True, **extra},
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["message"] == "The request body cannot be forwarded upstream (Recursion limit reached)"

    assert httpx.get(f"{gateway.url}/readyz", timeout=5).json()["open_circuits"] == []
    metrics = scrape(gateway.url)
    assert all(
        metrics.value("moa_circuit_state", model=m, state="closed") == 1 for m in ["alpha", "beta", "omega"]
    )
    assert post(gateway, "healthy", stream=True).status_code == 200


def test_the_half_open_trial_survives_an_unencodable_request(
    gateways: dict[str, ServerThread], upstream: RawUpstream
) -> None:
    gateway = gateways["httptools"]
    upstream.scripts["flaky"] = body(b"<html>oops</html>", content_type="text/html")
    first = post(gateway, "p-flaky")
    assert first.json()["moa"]["dropped"] == ["flaky"]
    assert scrape(gateway.url).value("moa_circuit_state", model="flaky", state="open") == 1, (
        "open after one failure"
    )
    upstream.scripts["flaky"] = json_body(completion("recovered"))
    time.sleep(0.35)  # the cool-down: the next call is the one trial

    refused = post(gateway, "p-flaky", response_format=DEEP)
    assert refused.status_code == 400, refused.text

    response = post(gateway, "p-flaky")
    (call,) = [c for c in response.json()["moa"]["calls"] if c["model"] == "flaky"]
    assert call["status"] == "ok", "the trial was not taken by the refused request"
    assert scrape(gateway.url).value("moa_circuit_state", model="flaky", state="closed") == 1
