"""What early exit saves: a workload where half the questions have one canonical answer (the simulator
answers `What is 12+30?` with the number, from every model), the other half open questions, through a
pipeline with early exit off and on. Prints calls and dollars per request and latency p50 of both.

    .venv/bin/python -m bench.early_exit [--questions 40]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

PROPOSER_MS, AGGREGATOR_MS = 100.0, 150.0
PIPELINES = {"early exit off": "moa", "early exit on": "moa-early"}


def cost_config(sim_url: str) -> dict[str, Any]:
    def model(ms: float, price: float) -> dict[str, Any]:
        return {
            "provider": "sim",
            "params": {"simulate": {"ttft_ms": ms, "tokens_per_s": 0}},
            "price": {"input_per_mtok": price, "output_per_mtok": price * 4},
        }

    layers = [{"proposers": ["p0", "p1", "p2"]}]
    return {
        "providers": {"sim": {"type": "openai", "base_url": f"{sim_url}/v1"}},
        "models": {**{f"p{i}": model(PROPOSER_MS, 0.5) for i in range(3)}, "agg": model(AGGREGATOR_MS, 3.0)},
        "pipelines": {
            "moa": {"layers": layers, "aggregator": "agg"},
            "moa-early": {"layers": layers, "aggregator": "agg", "early_exit": {"agreement": 1.0}},
        },
    }


def questions(count: int) -> list[str]:
    """Half canonical (every model answers the same number), half open."""
    return [
        f"What is {i}+{i * 7}?" if i % 2 == 0 else f"Why does topic {i} matter to engineers?"
        for i in range(count)
    ]


def run(gateway_url: str, model: str, asked: list[str], concurrency: int = 4) -> dict[str, float]:
    def one(question: str) -> tuple[float, int, float]:
        started = time.perf_counter()
        response = httpx.post(
            f"{gateway_url}/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": question}]},
            timeout=30,
        )
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        moa = response.json()["moa"]
        return elapsed, len([c for c in moa["calls"] if c["status"] == "ok"]), moa["cost_usd"]

    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, asked))
    return {
        "calls": statistics.fmean(r[1] for r in results),
        "usd": statistics.fmean(r[2] for r in results),
        "p50_ms": statistics.median(r[0] for r in results) * 1000,
    }


def cost_table(gateway_url: str, count: int) -> list[str]:
    asked = questions(count)
    measured = {label: run(gateway_url, model, asked) for label, model in PIPELINES.items()}
    off, on = measured["early exit off"], measured["early exit on"]
    lines = [
        f"Early exit, {count} questions (half canonical, half open), proposers 3 x {PROPOSER_MS:g} ms, "
        f"aggregator {AGGREGATOR_MS:g} ms, c=4, simulator prices:",
        "",
        "| pipeline | calls / request | $ / request | latency p50 ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, m in measured.items():
        lines.append(f"| {label} | {m['calls']:.2f} | {m['usd']:.7f} | {m['p50_ms']:.0f} |")
    lines.append(
        f"| saved | {1 - on['calls'] / off['calls']:.0%} of calls | {1 - on['usd'] / off['usd']:.0%} of cost "
        f"| {off['p50_ms'] - on['p50_ms']:+.0f} ms |"
    )
    return lines


def main() -> None:
    from moa_gateway.config import parse_config
    from moa_gateway.sim.core import SimProfile
    from moa_gateway.sim.server import create_sim_app
    from tests.support.gateways import serve_gateway
    from tests.support.servers import ServerThread

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=40)
    args = parser.parse_args()
    with ServerThread(create_sim_app(SimProfile(ttft_ms=0, tokens_per_s=0))) as sim:
        config = parse_config(cost_config(sim.url), "bench")
        with serve_gateway(config) as gateway:
            print("\n".join(cost_table(gateway.url, args.questions)))


if __name__ == "__main__":
    main()
