"""Time to first token, one definition for the three streaming APIs: from the request to when the first
frame carrying answer content (text, reasoning or a tool call) was sent to the client, as
`moa_response_time_to_first_token_seconds` records it. The aggregator starts `FIRST_TOKEN_S` after it
is called and reasons before it answers (or calls a tool), a token every 1/`TOKENS_PER_S` s; the client
notes when each frame arrives. The server records after it wrote the frame, so its figure can be no
later than the client's, and no earlier than the upstream sent what the frame carries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from moa_gateway.settings import Settings
from tests.support.asks import SKY
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape
from tests.support.servers import ServerThread
from tests.support.streams import frames_as_sent

FIRST_TOKEN_S = 0.3
TOKENS_PER_S = 40
METRIC = "moa_response_time_to_first_token_seconds"
TOOLS = {"city": {"type": "string"}}


def ttft_config() -> dict[str, Any]:
    slow = {"ttft_ms": FIRST_TOKEN_S * 1000, "tokens_per_s": TOKENS_PER_S}
    return {
        "providers": {"sim": {"type": "simulated", "ttft_ms": 0, "tokens_per_s": 0}},
        "models": {
            "fast": {"provider": "sim"},
            "thinker": {"provider": "sim", "params": {"simulate": {**slow, "reasoning": True}}},
            "caller": {"provider": "sim", "params": {"simulate": slow}},
        },
        "pipelines": {
            "think": {"layers": [{"proposers": ["fast"]}], "aggregator": "thinker"},
            "call": {"layers": [{"proposers": ["fast"]}], "aggregator": "caller"},
        },
    }


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServerThread]:
    settings = Settings()
    with serve_gateway(ttft_config(), settings, production_server=True) as server:
        yield server


def recorded(gateway: ServerThread, model: str) -> tuple[float, float]:
    """The TTFT histogram's (count, sum) for `model`."""
    scrape = Scrape(httpx.get(f"{gateway.url}/metrics").text)
    return scrape.value(f"{METRIC}_count", model=model), scrape.value(f"{METRIC}_sum", model=model)


def ttft_of(gateway: ServerThread, path: str, body: dict[str, Any]) -> tuple[float, list[tuple[float, Any]]]:
    """Stream one request; the TTFT it recorded, and its frames (arrival, parsed body) without comments."""
    count, total = recorded(gateway, body["model"])
    frames = frames_as_sent(f"{gateway.url}{path}", {**body, "stream": True})
    after_count, after_total = recorded(gateway, body["model"])
    assert after_count == count + 1, "one streamed request, one time to first token"
    parsed = [
        (at, orjson.loads(frame.split(b"data: ", 1)[1]))
        for at, frame in frames
        if b"data: {" in frame  # neither a keep-alive nor [DONE]
    ]
    return after_total - total, parsed


def first(frames: list[tuple[float, Any]], answer: Callable[[Any], bool]) -> float:
    return next(at for at, body in frames if answer(body))


def chat_answer(chunk: Any) -> bool:
    return any({"content", "reasoning_content", "tool_calls"} & set(c["delta"]) for c in chunk["choices"])


def responses_answer(event: Any) -> bool:
    kinds = ("output_text", "reasoning_text", "function_call_arguments")
    return str(event.get("type")) in {f"response.{kind}.delta" for kind in kinds}


WEATHER_TOOL = {"name": "get_weather", "parameters": {"type": "object", "properties": TOOLS}}


@pytest.mark.parametrize(
    "body",
    [
        {"model": "think", "max_tokens": 4},
        {"model": "call", "tools": [{"type": "function", "function": WEATHER_TOOL}]},
    ],
    ids=["reasoning", "tool_call"],
)
def test_chat_ttft_ends_at_the_first_chunk_of_reasoning_text_or_tool_call(
    gateway: ServerThread, body: dict[str, Any]
) -> None:
    ttft, frames = ttft_of(
        gateway, "/v1/chat/completions", {**body, "messages": [{"role": "user", "content": SKY}]}
    )

    assert FIRST_TOKEN_S <= ttft <= first(frames, chat_answer), (ttft, frames[:3])


def test_completions_ttft_ends_at_the_first_text_the_reasoning_it_drops_does_not_count(
    gateway: ServerThread,
) -> None:
    body = {"model": "think", "prompt": SKY, "max_tokens": 4, "stream_options": {"include_usage": True}}

    ttft, frames = ttft_of(gateway, "/v1/completions", body)

    usage = frames[-1][1]["usage"]
    reasoned = usage["completion_tokens_details"]["reasoning_tokens"]  # sent upstream before the text
    assert reasoned > 0
    first_text_s = first(frames, lambda chunk: any(c["text"] for c in chunk["choices"]))
    assert FIRST_TOKEN_S + reasoned / TOKENS_PER_S <= ttft <= first_text_s, (ttft, reasoned)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "think", "max_output_tokens": 4},
        {"model": "call", "tools": [{"type": "function", **WEATHER_TOOL}]},
    ],
    ids=["reasoning", "tool_call"],
)
def test_responses_ttft_ends_at_the_first_event_of_reasoning_text_or_a_function_call(
    gateway: ServerThread, body: dict[str, Any]
) -> None:
    ttft, frames = ttft_of(gateway, "/v1/responses", {**body, "input": SKY})

    assert FIRST_TOKEN_S <= ttft <= first(frames, responses_answer), (ttft, frames[2:4])


BURST_WORDS = [f"word{i} " for i in range(300)]


async def burst_upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An OpenAI-compatible upstream that answers at once: a JSON completion, or its whole event stream
    (300 tokens) in one write, as a fast provider's stream arrives."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    base = {"id": "burst", "object": "chat.completion.chunk", "created": 0, "model": "burst"}
    if not orjson.loads(body).get("stream"):
        answer = {
            **base,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "A proposal."},
                    "finish_reason": "stop",
                }
            ],
        }
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(answer)})
        return
    deltas = [{"role": "assistant", "content": ""}, *({"content": word} for word in BURST_WORDS)]
    chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    stream = b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks) + b"data: [DONE]\n\n"
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    await send({"type": "http.response.body", "body": stream})


def test_an_answer_sent_at_once_still_streams_its_first_token_first() -> None:
    """The aggregator's whole answer arrived in one read: its first token goes out in a frame of its own,
    not held back until every token after it went through the run (it came with the whole answer)."""
    with ServerThread(burst_upstream) as upstream:
        provider = {"type": "openai", "base_url": f"{upstream.url}/v1"}
        config = {
            "providers": {"burst": provider},
            "models": {name: {"provider": "burst"} for name in ("p1", "p2", "agg")},
            "pipelines": {"moa": {"layers": [{"proposers": ["p1", "p2"]}], "aggregator": "agg"}},
        }
        with serve_gateway(config, production_server=True) as gateway:
            body = {"model": "moa", "messages": [{"role": "user", "content": SKY}], "stream": True}
            frames = frames_as_sent(f"{gateway.url}/v1/chat/completions", body)

    texts = [
        choice["delta"].get("content") or ""
        for _, frame in frames
        if frame.startswith(b"data: {")
        for choice in orjson.loads(frame[6:])["choices"]
    ]
    answer = [text for text in texts if text]
    assert "".join(answer) == "".join(BURST_WORDS)
    assert answer[0] == BURST_WORDS[0], f"the first content frame carried {len(answer[0])} characters"
