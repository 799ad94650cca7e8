"""The simulator's prompt cache: `cached_tokens` is the longest prefix the model was sent recently, from
1024 tokens in blocks of 128, with bounded memory; `simulate.tool_rounds` for longer agent loops; and
references read wherever the pipeline placed them."""

from __future__ import annotations

from typing import Any

import pytest

from moa_gateway.core.prompts import DEFAULT_AGGREGATOR_PROMPT, Injection, inject_references
from moa_gateway.core.tokens import count_prompt_tokens
from moa_gateway.sim import core
from moa_gateway.sim.prefix_cache import PrefixCache

FAST = core.SimProfile(ttft_ms=0, tokens_per_s=0)
TOOL = {"type": "function", "function": {"name": "look", "parameters": {"type": "object", "properties": {}}}}


def words(count: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(count))


def conversation(*turns: str) -> list[dict[str, Any]]:
    roles = ["user", "assistant"]
    return [{"role": roles[i % 2], "content": text} for i, text in enumerate(turns)]


LONG = conversation(words(1500), "Sure.", "And then?")  # 1500 + 2 + 3 + 3 role markers = 1508 tokens


def test_a_prompt_seen_before_is_read_from_the_cache_in_whole_blocks() -> None:
    cache = PrefixCache()

    assert cache.read("m", LONG) == 0, "nothing cached the first time"
    assert count_prompt_tokens(LONG) == 1508
    assert cache.read("m", LONG) == 1408, "11 blocks of 128; the last 100 tokens are no whole block"


def test_a_longer_prompt_reuses_the_prefix_it_shares() -> None:
    cache = PrefixCache()
    cache.read("m", LONG)

    grown = [*LONG, {"role": "assistant", "content": words(300, "a")}, {"role": "user", "content": "ok"}]

    assert cache.read("m", grown) == 1408
    assert cache.read("m", grown) == (count_prompt_tokens(grown) // 128) * 128


def test_a_change_early_in_the_prompt_loses_everything_after_it() -> None:
    cache = PrefixCache()
    cache.read("m", LONG)
    changed = [{"role": "system", "content": "Refs: " + words(10, "r")}, *LONG]  # the paper's placement

    assert cache.read("m", changed) == 0
    edited = conversation(words(300) + " CHANGED " + words(1200, "x"), "Sure.", "And then?")
    assert cache.read("m", edited) == 256, "the first 301 tokens are the same: two whole blocks"


def test_tool_calls_are_part_of_the_prefix() -> None:
    cache = PrefixCache()

    def loop(arguments: str) -> list[dict[str, Any]]:
        call = {"id": "c1", "type": "function", "function": {"name": "look", "arguments": arguments}}
        return [
            {"role": "user", "content": "Look."},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": words(1500)},
        ]

    cache.read("m", loop('{"a": 1}'))
    assert cache.read("m", loop('{"a": 2}')) == 0
    assert cache.read("m", loop('{"a": 1}')) > 1024


def test_each_model_has_its_own_cache_and_short_prompts_none() -> None:
    cache = PrefixCache()
    cache.read("m", LONG)
    short = conversation(words(1000))

    assert cache.read("other", LONG) == 0
    cache.read("m", short)
    assert cache.read("m", short) == 0, "under 1024 tokens nothing is cached"


def test_memory_is_bounded_and_the_least_recently_used_go_first() -> None:
    cache = PrefixCache(max_blocks=20)
    cache.read("m", LONG)  # 11 blocks
    other = conversation(words(1500, "z"))
    cache.read("m", other)  # 11 more: the oldest two of LONG's go

    assert len(cache) == 20
    assert cache.read("m", LONG) == 0, "its first blocks were forgotten"
    assert cache.read("m", LONG) == 1408


def test_a_prefix_unused_past_its_ttl_is_gone() -> None:
    now = [0.0]
    cache = PrefixCache(ttl_s=300, clock=lambda: now[0])
    cache.read("m", LONG)

    now[0] = 299.0
    assert cache.read("m", LONG) == 1408
    now[0] = 600.0
    assert cache.read("m", LONG) == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_the_simulator_reports_cached_tokens_in_usage(stream: bool) -> None:
    cache = PrefixCache()
    body = {"model": "m", "messages": LONG, "stream_options": {"include_usage": True}}

    async def usage() -> dict[str, Any]:
        if not stream:
            return dict((await core.complete(body, FAST, cache=cache))["usage"])
        chunks = [chunk async for chunk in core.stream(body, FAST, cache=cache)]
        return dict(chunks[-1]["usage"])

    first, second = await usage(), await usage()

    assert "prompt_tokens_details" not in first
    assert second["prompt_tokens_details"] == {"cached_tokens": 1408}
    assert second["prompt_tokens"] == first["prompt_tokens"] == 1508


async def test_tool_rounds_keeps_calling_tools_until_that_many_results_followed_the_user() -> None:
    profile = core.SimProfile(ttft_ms=0, tokens_per_s=0, tool_rounds=3)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Look three times."}]
    finishes = []
    for _ in range(4):
        reply = await core.complete({"model": "m", "messages": messages, "tools": [TOOL]}, profile)
        choice = reply["choices"][0]
        finishes.append(choice["finish_reason"])
        if choice["finish_reason"] != "tool_calls":
            break
        (call,) = choice["message"]["tool_calls"]
        messages += [choice["message"], {"role": "tool", "tool_call_id": call["id"], "content": "seen"}]

    assert finishes == ["tool_calls", "tool_calls", "tool_calls", "stop"]


async def test_by_default_one_tool_result_ends_the_loop() -> None:
    messages = [
        {"role": "user", "content": "Look."},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]},
        {"role": "tool", "tool_call_id": "c", "content": "seen"},
    ]
    reply = await core.complete({"model": "m", "messages": messages, "tools": [TOOL]}, FAST)

    assert reply["choices"][0]["finish_reason"] == "stop"
    with pytest.raises(core.SimulatorRequestError, match="tool_rounds"):
        await core.complete({"model": "m", "messages": messages, "simulate": {"tool_rounds": 0}}, FAST)


async def test_the_aggregator_reads_references_placed_before_the_last_user_message() -> None:
    messages = inject_references(
        [{"role": "user", "content": "Why is the sky blue?"}],
        ["[alpha] On 'Why': light scatters", "[beta] On 'Why': Rayleigh"],
        DEFAULT_AGGREGATOR_PROMPT,
        Injection("before_last_user"),
    )
    reply = await core.complete({"model": "omega", "messages": messages}, FAST)

    text = reply["choices"][0]["message"]["content"]
    assert text.startswith("[omega] Synthesis of 2 responses on 'Why is the sky blue?': (1) alpha: light")
