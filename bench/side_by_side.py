"""Passthrough overhead side by side with the LiteLLM proxy, in one run: the stub upstream, the gateway
(bench/run.py's throughput config, model `direct`) and the LiteLLM proxy (one model, `openai/direct`, on
the same stub; no callbacks, no auth, no database), each its own process, driven in turn by wrk at c=1
with bench/wrk_post.lua: direct, gateway, LiteLLM, repeated for each round, after one warm-up each.

    .venv/bin/python -m bench.side_by_side [--rounds 3] [--duration 10] [--warmup 2]

Reports each run's latency (p50/p90/p99) and the proxy's CPU per request (utime + stime from /proc over
the run, per answer), then per round the overheads (gateway - direct, LiteLLM - direct, at p50 and p90)
and LiteLLM's over the gateway's, against issue 27's target: an overhead of at most 0.5 ms, at most 1/20
of LiteLLM's. LiteLLM comes from its own venv (`make edge`, ~750 MB); without it this says so and stops.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.harness import WrkResult, ensure_wrk, machine_description, progress, run_wrk, server_process
from bench.realistic import cpu_seconds, process_tree
from tests.support.cli import free_port
from tests.support.litellm_proxy import LITELLM, LOOPBACK_ENV, START_TIMEOUT_S

TARGETS = ("direct", "gateway", "LiteLLM")
ROUNDS = 3  # interleaved, each target once a round
OVERHEAD_MS, RATIO = 0.5, 20.0  # issue 27: overhead <= 0.5 ms and <= 1/20 of LiteLLM's
MISSING = "LiteLLM side by side skipped: LiteLLM is not installed (`make edge` installs it, ~750 MB)"


@dataclass(frozen=True)
class Sample:
    round: int
    target: str
    wrk: WrkResult
    cpu_ms: float | None  # the proxy's CPU per answer (none for the stub itself)


def litellm_installed() -> bool:
    return LITELLM.exists()


@contextmanager
def litellm_proxy(upstream_url: str, log_dir: Path) -> Iterator[tuple[str, int]]:
    """`litellm --config` with one model on the upstream, on a free port; yields its base URL and pid."""
    port = free_port()
    model = {"model": "openai/direct", "api_base": f"{upstream_url}/v1", "api_key": "sk-unused"}
    path = log_dir / f"litellm-{port}.yaml"
    path.write_text(yaml.safe_dump({"model_list": [{"model_name": "direct", "litellm_params": model}]}))
    args = [str(LITELLM), "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
    # No key on either side (the gateway runs without MOA_API_KEYS): LiteLLM's local-development switch.
    env = {
        **LOOPBACK_ENV,
        "HOME": str(log_dir),
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
    }
    url = f"http://127.0.0.1:{port}"
    ready = f"{url}/health/liveliness"
    with server_process(f"litellm-{port}", args, ready, log_dir, env, START_TIMEOUT_S) as proc:
        yield url, proc.pid


def run(
    wrk: str, log_dir: Path, rounds: int, duration_s: float, warmup_s: float, log_level: str
) -> list[Sample]:
    """Start the three servers, warm each up, then `rounds` interleaved rounds of one wrk run each."""
    from bench.run import CHAT, MESSAGES, gateway, throughput_config, upstream  # bench.run imports us

    body = {"model": "direct", "messages": MESSAGES}
    with ExitStack() as stack:
        up_url = stack.enter_context(upstream("stub", log_dir))
        gw_url, gw_pid = stack.enter_context(gateway(throughput_config(up_url), log_dir, log_level))
        progress("side by side: starting the LiteLLM proxy (its first start takes a while)")
        lite_url, lite_pid = stack.enter_context(litellm_proxy(up_url, log_dir))
        servers = {"direct": (up_url, None), "gateway": (gw_url, gw_pid), "LiteLLM": (lite_url, lite_pid)}
        for target, (url, _) in servers.items():
            progress(f"side by side: {target} warm-up {warmup_s:g} s")
            run_wrk(wrk, url + CHAT, body, 1, warmup_s)
        samples = []
        for n in range(1, rounds + 1):
            for target, (url, pid) in servers.items():
                before = cpu_seconds(process_tree(pid)) if pid else 0.0
                result = run_wrk(wrk, url + CHAT, body, 1, duration_s)
                cpu = (
                    (cpu_seconds(process_tree(pid)) - before) * 1000 / max(result.requests, 1)
                    if pid
                    else None
                )
                samples.append(Sample(n, target, result, cpu))
                progress(
                    f"side by side round {n}, {target}: p50 {result.p50_ms:.2f} ms, {result.errors} errors"
                )
    return samples


def section(wrk: str, log_dir: Path, duration_s: float, warmup_s: float, log_level: str) -> list[str]:
    """bench.run's part: the report of a run, or one line saying it was skipped and why."""
    if not litellm_installed():
        progress(MISSING)
        return [MISSING]
    return report(run(wrk, log_dir, ROUNDS, duration_s, warmup_s, log_level), duration_s)


def report(samples: list[Sample], duration_s: float) -> list[str]:
    """Every run, then the overheads per round and their medians against the target."""
    lines = [
        f"Passthrough side by side with the LiteLLM proxy, c=1 (wrk -t1 -c1, {duration_s:g} s a run, "
        "interleaved rounds), one stub upstream, one model, no auth; proxy CPU from /proc:",
        "",
        "| round | target | req/s | p50 ms | p90 ms | p99 ms | errors | proxy CPU ms / req |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in samples:
        r, cpu = s.wrk, "-" if s.cpu_ms is None else f"{s.cpu_ms:.2f}"
        lines.append(
            f"| {s.round} | {s.target} | {r.rps:.0f} | {r.p50_ms:.2f} | {r.p90_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.errors} | {cpu} |"
        )
    lines += [
        "",
        "| round | gateway overhead p50 (p90) ms | LiteLLM overhead p50 (p90) ms | LiteLLM / gateway, "
        "overhead p50 | LiteLLM / gateway, CPU per request |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    overheads, ratios = [], []
    for n in sorted({s.round for s in samples}):
        direct, gw, lite = (next(s for s in samples if (s.round, s.target) == (n, t)) for t in TARGETS)
        gw_ms, lite_ms = gw.wrk.p50_ms - direct.wrk.p50_ms, lite.wrk.p50_ms - direct.wrk.p50_ms
        ratio = lite_ms / gw_ms if gw_ms > 0 else float("inf")
        overheads.append(gw_ms)
        ratios.append(ratio)
        cpu_ratio = (lite.cpu_ms or 0) / gw.cpu_ms if gw.cpu_ms else float("inf")
        lines.append(
            f"| {n} | {gw_ms:.2f} ({gw.wrk.p90_ms - direct.wrk.p90_ms:.2f}) "
            f"| {lite_ms:.2f} ({lite.wrk.p90_ms - direct.wrk.p90_ms:.2f}) | {ratio:.1f}x | {cpu_ratio:.1f}x |"
        )
    overhead, ratio = statistics.median(overheads), statistics.median(ratios)
    met = overhead <= OVERHEAD_MS and ratio >= RATIO
    lines += [
        "",
        f"Median of the rounds: gateway overhead p50 {overhead:.2f} ms, LiteLLM's {ratio:.1f}x it; target "
        f"<= {OVERHEAD_MS:g} ms and <= 1/{RATIO:g} of LiteLLM's: {'met' if met else '**not met**'}.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"interleaved rounds (default {ROUNDS})")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per target (default 2)")
    parser.add_argument(
        "--log-level", default="warning", help="the gateway's MOA_LOG_LEVEL (default warning)"
    )
    args = parser.parse_args(argv)
    if not litellm_installed():
        progress(MISSING)
        return 1
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="moa-bench-") as tmp:
        samples = run(wrk, Path(tmp), args.rounds, args.duration, args.warmup, args.log_level)
    lines = [*(f"- {line}" for line in machine_description(wrk)), "", *report(samples, args.duration)]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
