"""The MoA core alone: MoA 3+1 runs through `Runner.events` over an instant in-memory backend, in this
process, JSON and streamed; prints the CPU per run (time.process_time) after 200 warm-up runs. No HTTP,
no server: what the run itself costs, apart from the wire and the upstream client.

    .venv/bin/python -m bench.core_run [--runs 3000]

For instruction counts, run it under callgrind twice with N and 2N runs and divide the difference by N
(`valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python -m bench.core_run --runs N`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncGenerator

from moa_gateway.config import parse_config
from moa_gateway.config.topology import catalogue_of
from moa_gateway.core.plan import make_plan
from moa_gateway.core.ports import RetryBudget, RunContext
from moa_gateway.core.runner import Runner, RunOptions, collect
from moa_gateway.core.types import Answer, CallSpec, Delta, RunInput, Usage

CONFIG = {
    "providers": {"sim": {"type": "simulated"}},
    "models": {model: {"provider": "sim"} for model in ("a", "b", "c", "o")},
    "pipelines": {"moa": {"layers": [{"proposers": ["a", "b", "c"]}], "aggregator": "o"}},
}


class InstantBackend:
    """Every model answers at once: twelve words, streamed word by word when asked to stream."""

    def admit(self, model: str) -> bool:
        return True

    async def call(
        self, spec: CallSpec, context: RunContext, *, stream: bool
    ) -> AsyncGenerator[Delta | Answer, None]:
        text = f"{spec.model} answers: the sky is blue because of Rayleigh scattering."
        if stream:
            for word in text.split(" "):
                yield Delta(text=word + " ")
        yield Answer(text, "stop", Usage(40, 12), cost_usd=0.0001, ttft_s=0.001)


async def measure(runs: int) -> dict[str, float]:
    """Microseconds of CPU per run, JSON and streamed."""
    catalogue = catalogue_of(parse_config(CONFIG, "bench"))
    runner = Runner(InstantBackend(), catalogue)
    plan = make_plan(catalogue, "moa")
    ask = RunInput.plain([{"role": "user", "content": "Why is the sky blue?"}])
    spent: dict[str, float] = {}
    for stream in (False, True):
        for _ in range(200):
            await collect(runner.events(plan, ask, RunContext(RetryBudget(0)), RunOptions(stream=stream)))
        started = time.process_time()
        for _ in range(runs):
            await collect(runner.events(plan, ask, RunContext(RetryBudget(0)), RunOptions(stream=stream)))
        spent["stream" if stream else "json"] = (time.process_time() - started) * 1e6 / runs
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3000)
    args = parser.parse_args(argv)
    for mode, us in asyncio.run(measure(args.runs)).items():
        print(f"{mode:6s} {us:7.1f} us CPU per MoA 3+1 run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
