"""Legacy `POST /v1/completions` through real HTTP with the openai SDK: the prompt runs as a user
message of the same MoA run; the answer comes back as `text_completion` choices, JSON or streamed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.configs import PROPOSERS
from tests.support.gateways import Gateway


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as c:
        yield c


def test_a_prompt_becomes_a_user_message_and_the_answer_a_text_completion(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    completion = client.completions.create(
        model="moa", prompt="Why is the sky blue?", max_tokens=300, stop=["\n\n"]
    )

    assert completion.object == "text_completion" and completion.id.startswith("cmpl-")
    [choice] = completion.choices
    assert choice.index == 0 and choice.finish_reason == "stop"
    assert choice.text.startswith("[omega] Synthesis of 3 responses on 'Why is the sky blue?'")
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert (completion.model_extra or {})["moa"]["pipeline"] == "moa"
    [sent] = gateway.recorder.sent_to("omega")
    assert sent["messages"][-1] == {"role": "user", "content": "Why is the sky blue?"}
    assert sent["max_tokens"] == 300 and sent["stop"] == ["\n\n"]
    assert all(
        gateway.recorder.sent_to(p)[0]["messages"][-1]["content"] == "Why is the sky blue?" for p in PROPOSERS
    )


def test_a_streamed_completion_sends_the_same_text_in_chunks(client: openai.OpenAI) -> None:
    whole = client.completions.create(model="moa-1", prompt=["Name a colour."], seed=7)
    chunks = list(
        client.completions.create(
            model="moa-1",
            prompt="Name a colour.",
            seed=7,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert all(c.object == "text_completion" and c.id == chunks[0].id for c in chunks)
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) == whole.choices[0].text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens  # type: ignore[union-attr]


def test_n_echo_and_logprobs_come_back_in_the_legacy_shape(client: openai.OpenAI) -> None:
    completion = client.completions.create(
        model="alpha", prompt="Hi", n=2, echo=True, logprobs=2, max_tokens=5
    )
    assert [c.index for c in completion.choices] == [0, 1]
    first = completion.choices[0]
    assert first.text.startswith("Hi[alpha]") and first.finish_reason == "length"
    logprobs = first.logprobs
    assert logprobs is not None and logprobs.tokens is not None and len(logprobs.tokens) == 5
    assert logprobs.text_offset is not None and logprobs.text_offset[0] == len("Hi")
    assert logprobs.top_logprobs is not None and all(len(top) == 2 for top in logprobs.top_logprobs)


def test_unsupported_prompts_are_400s_and_unknown_models_404s(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="moa", prompt=["one", "two"])
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "prompt"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="moa", prompt=[1, 2, 3])
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="hi", stream=True)
    assert gateway.recorder.bodies() == []


def test_models_lists_ids_that_every_endpoint_serves(client: openai.OpenAI, gateway: Gateway) -> None:
    ids = [m.id for m in client.models.list()]
    assert {"moa", "moa-1", "alpha", "omega"} <= set(ids)
    for model in ["moa-1", "beta"]:
        assert client.responses.create(model=model, input="hi").status == "completed"
        assert client.completions.create(model=model, prompt="hi").choices[0].text
        assert client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        ).choices
    assert httpx.post(f"{gateway.base_url}/completions", json={"model": "moa"}).status_code == 400
