"""How close a MoA request comes to its critical path: sum over layers of the slowest proposer, plus the
aggregator. Real gateway and simulator servers on loopback; prints one table.

    .venv/bin/python -m bench.critical_path [--layers 2] [--proposer-ms 200 200 200] [--aggregator-ms 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx

from moa_gateway.config import parse_config
from moa_gateway.sim.core import SimProfile
from moa_gateway.sim.server import create_sim_app
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread


def pipeline_config(
    sim_url: str, layers: int, proposer_ms: list[float], aggregator_ms: float
) -> dict[str, Any]:
    def model(ms: float) -> dict[str, Any]:
        return {"provider": "sim", "params": {"simulate": {"ttft_ms": ms, "tokens_per_s": 0}}}

    proposers = {f"p{i}": model(ms) for i, ms in enumerate(proposer_ms)}
    return {
        "providers": {"sim": {"type": "openai", "base_url": f"{sim_url}/v1"}},
        "models": {**proposers, "agg": model(aggregator_ms)},
        "pipelines": {"moa": {"layers": [{"proposers": list(proposers)}] * layers, "aggregator": "agg"}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--proposer-ms", type=float, nargs="+", default=[200.0, 200.0, 200.0])
    parser.add_argument("--aggregator-ms", type=float, default=200.0)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()

    ideal_s = (args.layers * max(args.proposer_ms) + args.aggregator_ms) / 1000
    with ServerThread(create_sim_app(SimProfile(ttft_ms=0, tokens_per_s=0))) as sim:
        config = parse_config(
            pipeline_config(sim.url, args.layers, args.proposer_ms, args.aggregator_ms), "bench"
        )
        with serve_gateway(config) as gateway, httpx.Client(timeout=30) as client:
            body = {"model": "moa", "messages": [{"role": "user", "content": "Benchmark question"}]}
            client.post(f"{gateway.url}/v1/chat/completions", json=body).raise_for_status()  # warm-up
            latencies = []
            for _ in range(args.requests):
                started = time.perf_counter()
                client.post(f"{gateway.url}/v1/chat/completions", json=body).raise_for_status()
                latencies.append(time.perf_counter() - started)

    p50 = statistics.median(latencies)
    calls = args.layers * len(args.proposer_ms) + 1
    print(
        f"MoA: {args.layers} layers x {len(args.proposer_ms)} proposers {args.proposer_ms} ms + aggregator {args.aggregator_ms:g} ms"
    )
    print(
        f"upstream calls per request: {calls}; sequential sum would be {(args.layers * sum(args.proposer_ms) + args.aggregator_ms):.0f} ms"
    )
    print(f"{'requests':>8} {'critical path':>14} {'min':>9} {'p50':>9} {'max':>9} {'p50/critical':>13}")
    print(
        f"{args.requests:>8} {ideal_s * 1000:>11.0f} ms {min(latencies) * 1000:>6.1f} ms {p50 * 1000:>6.1f} ms "
        f"{max(latencies) * 1000:>6.1f} ms {p50 / ideal_s:>13.3f}"
    )


if __name__ == "__main__":
    main()
