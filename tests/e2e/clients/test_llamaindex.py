"""LlamaIndex `structured_predict` (its Responses LLM sends `tool_choice: "none"` without tools), and
the same fields from the openai SDK: with no tools offered they mean nothing, so no upstream gets them
(a strict one, as OpenAI and the simulator are, rejects them)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import openai

from tests.support.gateways import Gateway
from tests.support.node_clients import CLIENT_ENV

HERE = Path(__file__).parent
LLAMAINDEX_PYTHON = HERE / ".venv" / "bin" / "python"  # made by `make clients` (`make test` runs it)
TOOL_FIELDS = {"tools", "tool_choice", "parallel_tool_calls"}


def test_llamaindex_structured_predict_gets_its_object(gateway: Gateway, tmp_path: Path) -> None:
    assert LLAMAINDEX_PYTHON.exists(), "LlamaIndex's venv is missing: run `make clients`"
    done = subprocess.run(
        [str(LLAMAINDEX_PYTHON), str(HERE / "llamaindex_structured.py"), gateway.base_url, "moa-1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**CLIENT_ENV, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    city = json.loads(done.stdout)
    assert set(city) == {"name", "country"} and all(isinstance(v, str) and v for v in city.values())
    [aggregator] = gateway.recorder.sent_to("omega")
    assert aggregator["response_format"]["json_schema"]["name"] == "City"
    assert not TOOL_FIELDS & set(aggregator)


def test_tool_fields_without_tools_reach_no_upstream(gateway: Gateway) -> None:
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as client:
        chat = client.chat.completions.create(
            model="moa-1",
            messages=[{"role": "user", "content": "hello"}],
            tool_choice="auto",
            parallel_tool_calls=False,
        )
        response = client.responses.create(model="alpha", input="hello", tool_choice="none")
    assert chat.choices[0].message.content and response.status == "completed"
    sent = gateway.recorder.bodies()
    assert [b["model"] for b in sent] == [*["alpha", "beta", "gamma"], "omega", "alpha"]
    assert all(not TOOL_FIELDS & set(body) for body in sent)


def test_tools_keep_their_fields(gateway: Gateway) -> None:
    """Offered tools still travel with `tool_choice` and `parallel_tool_calls`, as sent."""
    weather: Any = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as client:
        client.chat.completions.create(
            model="alpha",
            messages=[{"role": "user", "content": "weather?"}],
            tools=[weather],
            tool_choice="required",
            parallel_tool_calls=False,
        )
    [sent] = gateway.recorder.sent_to("alpha")
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False
