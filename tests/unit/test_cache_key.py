"""The response cache's key: every field that can change the answer splits it (a field the gateway
does not know included), the caller and the config's fingerprint too; framing and tags do not."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from moa_gateway.core.caller import ANONYMOUS, Caller
from moa_gateway.service.cache.key import cache_key
from moa_gateway.wire.requests import ChatCompletionRequest

BASE: dict[str, Any] = {"model": "moa", "messages": [{"role": "user", "content": "Name a prime."}]}
ADA = Caller.of_key_digest(hashlib.sha256(b"ada's key").digest())
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def key(caller: Caller = ADA, namespace: str = "config-1", **fields: Any) -> str:
    return cache_key(ChatCompletionRequest.model_validate({**BASE, **fields}), caller, namespace)


@pytest.mark.parametrize(
    "fields",
    [
        {"model": "moa-1"},
        {"messages": [{"role": "user", "content": "Name two primes."}]},
        {"messages": [{"role": "system", "content": "Be brief."}, *BASE["messages"]]},
        {"temperature": 0.3},
        {"top_p": 0.5},
        {"seed": 7},
        {"n": 2},
        {"max_tokens": 20},
        {"stop": ["\n"]},
        {"tools": [TOOL]},
        {"response_format": {"type": "json_object"}},
        {"logprobs": True},
        {"reasoning_effort": "high"},  # a field the gateway does not know: kept, to be safe
        {"moa": {"layers": [["alpha"]]}},
        {"moa": {"aggregator": "beta"}},
        {"moa": {"max_cost_usd": 0.01}},
    ],
)
def test_a_field_that_can_change_the_answer_changes_the_key(fields: dict[str, Any]) -> None:
    assert key(**fields) != key()


@pytest.mark.parametrize(
    "fields",
    [
        {"stream": True},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"user": "alice"},
        {"metadata": {"run": "42"}},
        {"store": True},
        {"service_tier": "flex"},
        {"temperature": None},  # null is as unsent
        {"moa": {"include_proposals": False, "cache": True}},
    ],
)
def test_framing_and_tags_do_not_change_the_key(fields: dict[str, Any]) -> None:
    assert key(**fields) == key()


def test_the_caller_and_the_config_are_part_of_the_key() -> None:
    assert key(caller=ANONYMOUS) != key()
    assert key(namespace="config-2") != key()


def test_the_key_does_not_depend_on_the_order_of_fields() -> None:
    assert key(temperature=0.2, seed=1, tools=[TOOL]) == key(tools=[TOOL], seed=1, temperature=0.2)
