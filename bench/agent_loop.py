"""What an agent loop costs: a long conversation, then user turns of 5 iterations each (the model calls a
tool 4 times, then answers), on the simulator with its prompt cache and cached-token prices. Calls, input
tokens, cached tokens and dollars per user turn for today's defaults, `fanout: user_turn`, `user_turn` +
`references: before_last_user`, and the aggregator model alone. Each runs on a fresh simulator (an empty
prompt cache) and gateway; the first user turn warms the cache and is left out of the figures.

    .venv/bin/python -m bench.agent_loop [--turns 4]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

ITERATIONS = 5  # gateway calls per user turn: 4 tool calls, then the answer
PROPOSERS = ["p0", "p1", "p2"]
# USD per million tokens; a cache read costs a tenth of fresh input, as at the major providers.
PROPOSER_PRICE = {"input_per_mtok": 0.5, "cached_input_per_mtok": 0.05, "output_per_mtok": 2.0}
AGGREGATOR_PRICE = {"input_per_mtok": 2.5, "cached_input_per_mtok": 0.25, "output_per_mtok": 10.0}
SCENARIOS = {  # label: the model id asked
    "MoA, today's defaults": "moa",
    "fanout: user_turn": "moa-turn",
    "user_turn + before_last_user": "moa-turn-cached",
    "single model (the aggregator alone)": "agg",
}
TOOL = {
    "type": "function",
    "function": {
        "name": "search_docs",
        "description": "Search the project's documentation",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


def loop_config(sim_url: str) -> dict[str, Any]:
    """Three cheaper proposers (200-token answers) and an aggregator that calls a tool 4 times a turn."""

    def model(price: dict[str, float], simulate: dict[str, Any]) -> dict[str, Any]:
        return {"provider": "sim", "params": {"simulate": simulate}, "price": price}

    proposers = {p: model(PROPOSER_PRICE, {"output_tokens": 200}) for p in PROPOSERS}
    layers = [{"proposers": PROPOSERS}]
    pipeline = {"layers": layers, "aggregator": "agg"}
    return {
        "providers": {"sim": {"type": "openai", "base_url": f"{sim_url}/v1", "timeout_s": 30}},
        "models": {**proposers, "agg": model(AGGREGATOR_PRICE, {"tool_rounds": ITERATIONS - 1})},
        "pipelines": {
            "moa": pipeline,
            "moa-turn": {**pipeline, "fanout": "user_turn"},
            "moa-turn-cached": {**pipeline, "fanout": "user_turn", "references": "before_last_user"},
        },
    }


def _text(tag: str, words: int) -> str:
    """Deterministic prose of about `words` tokens."""
    vocabulary = ["the", "service", "config", "request", "retry", "cache", "latency", "budget", "layer"]
    return " ".join(f"{vocabulary[i % len(vocabulary)]}{tag}{i % 97}" for i in range(words))


def history(exchanges: int = 12) -> list[dict[str, Any]]:
    """A long conversation so far: a 1,500-token system prompt and `exchanges` earlier exchanges."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are the project's support agent. " + _text("s", 1500)}
    ]
    for i in range(exchanges):
        messages.append({"role": "user", "content": f"Earlier question {i}: " + _text(f"u{i}", 60)})
        messages.append({"role": "assistant", "content": f"Earlier answer {i}: " + _text(f"a{i}", 250)})
    return messages


@dataclass
class Iteration:
    """One gateway call's upstream calls, summed by role."""

    proposer_calls: int = 0
    final_calls: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    final_input: int = 0
    final_cached: int = 0
    usd: float = 0.0


@dataclass
class Turn:
    iterations: list[Iteration] = field(default_factory=list)

    def total(self, name: str) -> float:
        return float(sum(getattr(i, name) for i in self.iterations))


def iteration_of(moa: dict[str, Any]) -> Iteration:
    it = Iteration(usd=moa["cost_usd"])
    for call in moa["calls"]:
        cached = call.get("cached_tokens", 0)
        it.input_tokens += call["prompt_tokens"]
        it.cached_tokens += cached
        if call["role"] == "proposer":
            it.proposer_calls += 1
        else:
            it.final_calls += 1
            it.final_input += call["prompt_tokens"]
            it.final_cached += cached
    return it


def run_turns(gateway_url: str, model: str, turns: int) -> list[Turn]:
    """`turns` user turns of ITERATIONS calls each, the client running the tool in between."""
    messages = history()
    done: list[Turn] = []
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        for number in range(turns):
            messages.append(
                {"role": "user", "content": f"Question {number}: how do I tune the retry budget?"}
            )
            turn = Turn()
            for step in range(ITERATIONS):
                body = {"model": model, "messages": messages, "tools": [TOOL]}
                response = client.post("/v1/chat/completions", json=body)
                response.raise_for_status()
                answer = response.json()
                turn.iterations.append(iteration_of(answer["moa"]))
                message = answer["choices"][0]["message"]
                messages.append({k: v for k, v in message.items() if k in ("role", "content", "tool_calls")})
                calls = message.get("tool_calls") or []
                if not calls:
                    break
                for call in calls:  # the tool's result, about 300 tokens
                    result = f"Search result {number}.{step}: " + _text(f"r{number}x{step}", 300)
                    messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
            if len(turn.iterations) != ITERATIONS:
                raise RuntimeError(
                    f"{model}: a user turn took {len(turn.iterations)} calls, not {ITERATIONS}"
                )
            done.append(turn)
    return done


@contextmanager
def servers() -> Iterator[str]:
    """A fresh simulator (empty prompt cache) and a gateway in front of it; yields the gateway's URL."""
    from moa_gateway.config import parse_config
    from moa_gateway.sim.core import SimProfile
    from moa_gateway.sim.server import create_sim_app
    from tests.support.gateways import serve_gateway
    from tests.support.servers import ServerThread

    with ServerThread(create_sim_app(SimProfile(ttft_ms=0, tokens_per_s=0))) as sim:
        config = parse_config(loop_config(sim.url), "bench-agent-loop")
        with serve_gateway(config) as gateway:
            yield gateway.url


def measure(turns: int = 4) -> dict[str, list[Turn]]:
    """Every scenario's user turns, each scenario on servers of its own."""
    measured = {}
    for label, model in SCENARIOS.items():
        with servers() as url:
            measured[label] = run_turns(url, model, turns)
    return measured


def report(measured: dict[str, list[Turn]]) -> list[str]:
    """The table per user turn (the first, cold, turn left out), then the done-when checks."""
    rows: dict[str, dict[str, float]] = {}
    for label, turns in measured.items():
        warm = turns[1:]
        later = [i for t in warm for i in t.iterations[1:]]  # from the second iteration on

        def mean(name: str, turns: list[Turn] = warm) -> float:
            return statistics.fmean(t.total(name) for t in turns)

        rows[label] = {
            "proposer": mean("proposer_calls"),
            "final": mean("final_calls"),
            "input": mean("input_tokens"),
            "cached": mean("cached_tokens"),
            "usd": mean("usd"),
            "final_share_later": min(i.final_cached / i.final_input for i in later),
            "final_share_first": statistics.fmean(
                t.iterations[0].final_cached / t.iterations[0].final_input for t in warm
            ),
            "final_share": sum(i.final_cached for t in warm for i in t.iterations)
            / sum(i.final_input for t in warm for i in t.iterations),
        }
    count = len(next(iter(measured.values())))
    single = rows["single model (the aggregator alone)"]
    lines = [
        f"Agent loop: a {measured_context()}-token conversation, then {count} user turns of {ITERATIONS} "
        f"iterations (4 tool calls, then the answer; ~300-token tool results); 3 proposers "
        f"(${PROPOSER_PRICE['input_per_mtok']:g}/${PROPOSER_PRICE['cached_input_per_mtok']:g} cached/"
        f"${PROPOSER_PRICE['output_per_mtok']:g} out per Mtok) + aggregator "
        f"(${AGGREGATOR_PRICE['input_per_mtok']:g}/${AGGREGATOR_PRICE['cached_input_per_mtok']:g}/"
        f"${AGGREGATOR_PRICE['output_per_mtok']:g}), simulator prompt cache; per user turn, mean of turns "
        f"2-{count} (turn 1 warms the cache):",
        "",
        "| scenario | proposer calls | aggregator calls | input tokens | cached tokens | cached share "
        "| aggregator cached share, iteration 1 | aggregator cached share, iterations 2-5 (min) "
        "| $ / user turn | x single model |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, r in rows.items():
        lines.append(
            f"| {label} | {r['proposer']:.0f} | {r['final']:.0f} | {r['input']:,.0f} | {r['cached']:,.0f} "
            f"| {r['cached'] / r['input']:.0%} | {r['final_share_first']:.0%} | {r['final_share_later']:.0%} "
            f"| {r['usd']:.5f} "
            f"| {r['usd'] / single['usd']:.2f} |"
        )
    base, turn, cached = (
        rows["MoA, today's defaults"],
        rows["fanout: user_turn"],
        rows["user_turn + before_last_user"],
    )
    divided = base["proposer"] / turn["proposer"]
    lines += [
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
        f"| user_turn: proposer calls divided by {ITERATIONS} | {base['proposer']:.0f} -> {turn['proposer']:.0f} "
        f"per user turn (/{divided:.1f}) | {_met(divided >= ITERATIONS)} |",
        f"| before_last_user: aggregator cached share >= 80% from the 2nd iteration | min "
        f"{cached['final_share_later']:.1%} | {_met(cached['final_share_later'] >= 0.8)} |",
        f"| user_turn + before_last_user: $ per user turn <= 2x the single model's | {cached['usd']:.5f} vs "
        f"{single['usd']:.5f} ({cached['usd'] / single['usd']:.2f}x; today's defaults "
        f"{base['usd'] / single['usd']:.2f}x) | {_met(cached['usd'] <= 2 * single['usd'])} |",
    ]
    return lines


def measured_context() -> str:
    from moa_gateway.core.tokens import count_prompt_tokens

    return f"{count_prompt_tokens(history()):,}"


def _met(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=4, help="user turns per scenario (default 4; >= 2)")
    args = parser.parse_args(argv)
    print("\n".join(report(measure(max(2, args.turns)))))


if __name__ == "__main__":
    main()
