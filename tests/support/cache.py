"""For the response cache's end-to-end tests: a gateway config over a recording simulator, and
requests through the official openai SDK that return the answer with its `x-moa-cache` header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import openai

from moa_gateway.config import GatewayConfig, parse_config
from tests.support.configs import PROPOSERS, SIM_KEY, topology
from tests.support.recording import Recorder

LONG_TTL = {"ttl_s": 600}


def cache_config(upstream_url: str) -> GatewayConfig:
    """`cached` (a 1-layer pipeline, 10 min), `brief` (0.5 s), `plain` (no cache), `degraded` (its
    aggregator fails: the first proposal stands in), and the model `omega` cached when asked directly."""
    data = topology("remote", layers=1, extra_models={"broke": {"provider": "remote", "price": {}}})
    data["models"]["omega"]["cache"] = LONG_TTL
    data["models"]["broke"]["params"] = {"simulate": {"fault": "error_500"}}
    layers = [{"proposers": PROPOSERS}]
    data["pipelines"] = {
        "cached": {"layers": layers, "aggregator": "omega", "cache": LONG_TTL},
        "brief": {"layers": layers, "aggregator": "omega", "cache": {"ttl_s": 0.5}},
        "plain": {"layers": layers, "aggregator": "omega"},
        "degraded": {
            "layers": layers,
            "aggregator": "broke",
            "on_aggregator_failure": "best_proposal",
            "cache": LONG_TTL,
        },
    }
    data["providers"] = {
        "remote": {
            "type": "openai",
            "base_url": upstream_url,
            "api_key": SIM_KEY,
            "timeout_s": 10,
            "retries": {"max_attempts": 1},
        }
    }
    return parse_config(data, "cache")


@dataclass
class Answer:
    text: str
    cache: str  # the x-moa-cache header
    usage: dict[str, Any] | None
    moa: dict[str, Any]
    cost_header: str


def client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def ask(url: str, key: str, model: str, question: str, **extra: Any) -> Answer:
    """A JSON chat completion of one user message."""
    with client(url, key) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": question}], **extra
        )
        completion = raw.parse()
    body = completion.model_dump()
    return Answer(
        completion.choices[0].message.content or "",
        raw.headers["x-moa-cache"],
        None if completion.usage is None else completion.usage.model_dump(exclude_none=True),
        body["moa"],
        raw.headers["x-moa-cost-usd"],
    )


def ask_streamed(url: str, key: str, model: str, question: str, **extra: Any) -> Answer:
    """A streamed chat completion of one user message, with its usage chunk."""
    with (
        client(url, key) as sdk,
        sdk.chat.completions.with_streaming_response.create(
            model=model,
            messages=[{"role": "user", "content": question}],
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        ) as response,
    ):
        chunks = list(response.parse())
        header = response.headers["x-moa-cache"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    (last,) = [c for c in chunks if c.usage is not None]
    usage = None if last.usage is None else last.usage.model_dump(exclude_none=True)
    return Answer(text, header, usage, last.model_dump()["moa"], "")


def upstream_calls(recorder: Recorder) -> int:
    return len(recorder.bodies())
