"""The gateway against a scripted, misbehaving OpenAI-compatible upstream, over real HTTP.

The upstream's behaviour is picked by the model name it is asked for; its key is echoed in some of its
error messages, as real providers do, so the tests can check the gateway never passes it on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from moa_gateway.config import parse_config
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread

KEY = "sk-upstream-secret-7f3a9"
ASK: list[Any] = [{"role": "user", "content": "Hi"}]


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "x",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def scripted_upstream() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        model = body["model"]
        if model == "not-json":
            return Response("<html>Bad gateway</html>", status_code=500, media_type="text/html")
        if model == "no-choices":
            return JSONResponse({"id": "x", "choices": []})
        if model == "rejects":
            return JSONResponse({"error": {"message": f"context too long (key {KEY})"}}, status_code=400)
        if model == "rate-limited":
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
        if model == "echo-request-id":
            message = {"role": "assistant", "content": request.headers.get("x-request-id", "")}
            return JSONResponse({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})

        async def frames() -> AsyncIterator[bytes]:
            yield b": upstream comment\n\n"
            yield chunk({"role": "assistant", "content": ""})
            yield chunk({"content": "Hello"})
            yield b": another comment\n\n"
            if model == "error-midstream":
                yield b'data: {"error": {"message": "overloaded for ' + KEY.encode() + b'"}}\n\n'
                return
            yield chunk({"content": " world"})
            yield chunk({}, "stop")
            yield b"data: [DONE]\n\n"

        if body.get("stream"):
            return StreamingResponse(frames(), media_type="text/event-stream")
        message = {"role": "assistant", "content": "Hello world"}
        return JSONResponse(
            {"id": "x", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
        )

    return app


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServerThread]:
    with ServerThread(scripted_upstream()) as upstream:
        names = [
            "plain",
            "error-midstream",
            "not-json",
            "no-choices",
            "rejects",
            "rate-limited",
            "echo-request-id",
        ]
        config = parse_config(
            {
                "providers": {"up": {"type": "openai", "base_url": f"{upstream.url}/v1", "api_key": KEY}},
                "models": {name: {"provider": "up"} for name in names},
                "pipelines": {
                    "via-plain": {"layers": [{"proposers": ["plain"]}], "aggregator": "error-midstream"}
                },
            },
            "test",
        )
        with serve_gateway(config) as server:
            yield server


@pytest.fixture
def client(gateway: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as c:
        yield c


def test_upstream_sse_comments_are_skipped_and_missing_usage_is_estimated(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="plain", messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello world"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 2  # "Hello", "world"
    (call,) = (chunks[-1].model_extra or {})["moa"]["calls"]
    assert call["usage_estimated"] is True and call["ttft_ms"] is not None


def test_error_frame_after_the_first_byte_arrives_in_band_then_done(gateway: ServerThread) -> None:
    request = {"model": "via-plain", "messages": ASK, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=request, timeout=10) as response:
        assert response.status_code == 200
        frames = [f for f in response.read().decode().split("\n\n") if f.startswith("data: ")]

    assert frames[-1] == "data: [DONE]"
    error = json.loads(frames[-2].removeprefix("data: "))["error"]
    assert error["type"] == "upstream_error"
    assert (
        error["message"]
        == "model error-midstream: the provider sent an error mid-stream: overloaded for [redacted]"
    )
    assert '"content":"Hello"' in frames[1], "the tokens before the failure were delivered"


def test_the_sdk_raises_on_an_in_band_error(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="via-plain", messages=ASK, stream=True)

    with pytest.raises(openai.APIError, match="mid-stream"):
        list(stream)


@pytest.mark.parametrize(
    ("model", "status", "message"),
    [
        ("not-json", 502, "model not-json: the provider answered 500: <html>Bad gateway</html>"),
        ("no-choices", 502, "model no-choices: the response has no choices"),
        ("rejects", 400, "model rejects: the provider answered 400: context too long (key [redacted])"),
        ("rate-limited", 502, "model rate-limited: the provider answered 429: slow down"),
    ],
)
def test_upstream_faults_map_to_clear_errors_without_the_key(
    client: openai.OpenAI, model: str, status: int, message: str
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=model, messages=ASK)

    assert caught.value.status_code == status
    assert caught.value.response.json()["error"]["message"] == message
    assert KEY not in caught.value.response.text


def test_the_clients_request_id_is_forwarded_upstream_and_echoed(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="echo-request-id", messages=ASK, extra_headers={"x-request-id": "trace-42"}
    )

    assert raw.headers["x-request-id"] == "trace-42"
    assert raw.parse().choices[0].message.content == "trace-42"
