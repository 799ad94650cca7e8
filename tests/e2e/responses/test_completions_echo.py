"""`echo` x `n` on `POST /v1/completions`, through real HTTP: each choice repeats the prompt, so the echoed
bytes (the prompt's JSON text times `n`) are capped at the body limit: past it a 400 in OpenAI's shape,
before any upstream call, instead of an answer hundreds of times the request's size."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import httpx
import openai
import pytest

from moa_gateway.settings import Settings
from tests.support.configs import simulated_config
from tests.support.gateways import serve_gateway

LIMIT = 64 * 1024
PROMPT = "x" * (LIMIT // 8)


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    settings = Settings(max_body_bytes=LIMIT)
    with (
        serve_gateway(simulated_config(), settings, production_server=True) as gateway,
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as c,
    ):
        yield c


def test_an_echo_up_to_the_body_limit_is_served(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="alpha", prompt=PROMPT, n=8, echo=True, max_tokens=5)

    assert len(completion.choices) == 8
    assert all(c.text.startswith(PROMPT) and len(c.text) > len(PROMPT) for c in completion.choices)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_echo_past_the_body_limit_is_a_400(client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="alpha", prompt=PROMPT, n=9, echo=True, max_tokens=5, stream=stream)

    error = caught.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error" and error["param"] == "echo"
    assert f"would be {len(PROMPT) * 9} bytes, over the limit of {LIMIT} bytes" in error["message"]


def test_a_2_mib_prompt_echoed_128_times_is_refused_in_bounded_memory() -> None:
    """The hostile review's case, at the default 4 MiB body limit: it built a 256 MiB answer (+534 MiB of
    the server's peak memory). Traced here across the server's thread and this client's."""
    body = {"model": "alpha", "prompt": "x" * 2 * 2**20, "n": 128, "echo": True, "max_tokens": 5}
    with serve_gateway(simulated_config()) as gateway:
        tracemalloc.start()
        try:
            answer = httpx.post(f"{gateway.url}/v1/completions", json=body, timeout=120)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert answer.status_code == 400 and answer.json()["error"]["param"] == "echo"
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB at the peak"
