"""`simulate.answer` and `simulate.context_window` through real HTTP, read by the official `openai` SDK."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from moa_gateway.core.tokens import count_prompt_tokens
from tests.support.asks import ASK_CAPITAL
from tests.support.configs import SIM_KEY
from tests.support.servers import ServerThread

ANSWER = "Paris is the capital of France."


@pytest.fixture
def client(sim_server: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{sim_server.url}/v1", api_key=SIM_KEY, max_retries=0) as c:
        yield c


def test_answer_fixes_the_content_whole_and_streamed(client: openai.OpenAI) -> None:
    fixed = {"simulate": {"answer": ANSWER}}
    whole = client.chat.completions.create(model="sim-alpha", messages=ASK_CAPITAL, extra_body=fixed)
    chunks = list(
        client.chat.completions.create(
            model="sim-beta",
            messages=ASK_CAPITAL,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=fixed,
        )
    )

    assert whole.choices[0].message.content == ANSWER
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == ANSWER and sum(1 for p in pieces if p) > 1
    usage = chunks[-1].usage
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens


@pytest.mark.parametrize("stream", [False, True])
def test_context_window_is_a_bad_request_error(client: openai.OpenAI, stream: bool) -> None:
    window = count_prompt_tokens(ASK_CAPITAL) + 5

    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="sim-alpha",
            messages=ASK_CAPITAL,
            max_tokens=6,
            stream=stream,
            extra_body={"simulate": {"context_window": window}},
        )

    error = raised.value
    assert error.status_code == 400 and error.code == "context_length_exceeded"
    assert error.type == "invalid_request_error" and error.param == "messages"
    assert f"maximum context length is {window} tokens" in error.message
    assert f"resulted in {window + 1} tokens" in error.message
