"""Streams promise their client a first byte within one keep-alive interval (`MOA_SSE_KEEPALIVE_S`), and
then a byte every interval while proposers work. The run's inner events (a layer started or finished)
are not sent to the client, so they must not restart that timer: here a layer ends every 0.25 s, for 1 s,
against a 0.4 s interval. Read with a raw HTTP client (frame by frame, as the bytes arrive), for each of
the three streaming APIs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from moa_gateway.settings import Settings
from tests.support.asks import SKY
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread
from tests.support.streams import frames_as_sent

KEEPALIVE_S = 0.4
CALL_MS = 250  # each layer, then the aggregator, takes this long: an inner event every 0.25 s
LAYERS = 4


def staggered_config() -> dict[str, Any]:
    model = {"provider": "sim", "params": {"simulate": {"ttft_ms": CALL_MS}}}
    return {
        "providers": {"sim": {"type": "simulated", "ttft_ms": 0, "tokens_per_s": 0}},
        "models": {"p": model, "agg": model},
        "pipelines": {"slow": {"layers": [{"proposers": ["p", "p"]}] * LAYERS, "aggregator": "agg"}},
    }


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServerThread]:
    settings = Settings(sse_keepalive_s=KEEPALIVE_S)
    with serve_gateway(staggered_config(), settings, production_server=True) as server:
        yield server


def chat_text(frame: bytes) -> bool:
    chunk = orjson.loads(frame.removeprefix(b"data: "))
    return any(choice["delta"].get("content") for choice in chunk["choices"])


def completion_text(frame: bytes) -> bool:
    return any(choice["text"] for choice in orjson.loads(frame.removeprefix(b"data: "))["choices"])


def response_text(frame: bytes) -> bool:
    return b"event: response.output_text.delta" in frame


APIS: dict[str, tuple[str, dict[str, Any], Callable[[bytes], bool]]] = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": SKY}]}, chat_text),
    "completions": ("/v1/completions", {"prompt": SKY}, completion_text),
    "responses": ("/v1/responses", {"input": SKY}, response_text),
}


@pytest.mark.parametrize("api", list(APIS))
def test_a_keep_alive_goes_out_before_the_answer_while_proposers_take_longer_than_the_interval(
    gateway: ServerThread, api: str
) -> None:
    path, body, has_text = APIS[api]

    frames = frames_as_sent(f"{gateway.url}{path}", {"model": "slow", "stream": True, **body})

    kinds = [
        "keep-alive" if frame == b": keep-alive" else "text" if has_text(frame) else "other"
        for _, frame in frames
        if frame != b"data: [DONE]"
    ]
    assert "text" in kinds, frames
    first_text = kinds.index("text")
    assert "keep-alive" in kinds[:first_text], (
        f"no keep-alive in the {frames[first_text][0]:.2f} s before the answer's first text: {kinds}"
    )
