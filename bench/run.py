"""The benchmark suite: an upstream and the gateway as separate processes on loopback, driven by wrk.

    .venv/bin/python -m bench.run [--duration 10] [--quick] [--skip-rss] [--skip-realistic]
                                  [--upstream stub|sim] [--only realistic]

Prints one markdown table, and writes it to bench/results/latest.md: req/s and p50/p90/p99 at concurrency
1, 16 and 64 for (a) direct to the upstream, (b) single-model passthrough through the gateway, (c) a
1-layer 3-proposer + aggregator pipeline, (d) the same streamed; then the passthrough overhead (b - a),
the critical-path efficiency (100/200/300 ms proposers, 200 ms aggregator, on the simulator), streams'
time to first byte and first token against the aggregator's own, and the gateway's RSS along 100k MoA
requests. The throughput upstream is bench/stub_upstream.py unless `--upstream sim`. Then the realistic-
latency scenarios of bench/realistic.py (1 s proposers, 0.5 s aggregator, c=500 and 1000, 1 and 2
workers); `--only realistic` runs those alone. Then the open-loop scenario of bench/open_loop.py (the same
upstream, Poisson arrivals at 333 and 666 req/s, 1 and 2 workers); `--only open_loop` runs it alone, and
`--open-loop-s` sets its measured seconds per run (`--quick`: 5 s). Then the agent-loop costs of
bench/agent_loop.py (calls, tokens, cached tokens and dollars per user turn; no load, a few seconds), and
when LiteLLM is installed (`make edge`) the passthrough beside it of bench/side_by_side.py (c=1, 3
interleaved rounds; ~2 min); `--only agent_loop` and `--only side_by_side` run them alone.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import yaml

from bench import agent_loop, open_loop, realistic, side_by_side
from bench.early_exit import cost_config, cost_table
from bench.harness import (
    BENCH,
    ROOT,
    StreamTiming,
    WrkResult,
    ensure_wrk,
    machine_description,
    progress,
    rss_mib,
    run_wrk,
    served_requests,
    server_process,
    stream_timing,
)
from tests.support.cli import free_port

BIN = Path(sys.executable).parent
CONCURRENCY = (1, 16, 64)
MESSAGES = [{"role": "user", "content": "What makes a good benchmark?"}]
CHAT = "/v1/chat/completions"
PROPOSER_MS, AGGREGATOR_MS = (100.0, 200.0, 300.0), 200.0
CRITICAL_MS = max(PROPOSER_MS) + AGGREGATOR_MS
SCENARIOS: dict[str, tuple[bool, dict[str, Any]]] = {  # name: (through the gateway?, body)
    "(a) direct to upstream": (False, {"model": "direct", "messages": MESSAGES}),
    "(b) passthrough (1 model)": (True, {"model": "direct", "messages": MESSAGES}),
    "(c) MoA 3 proposers + aggregator": (True, {"model": "moa", "messages": MESSAGES}),
    "(d) MoA 3+1, streamed": (True, {"model": "moa", "messages": MESSAGES, "stream": True}),
}
UPSTREAMS = {
    "stub": "bench/stub_upstream.py (raw asyncio + uvloop, fixed 50-token answer, JSON or SSE, no delay)",
    "sim": "the simulator (`moa-gateway simulate --ttft-ms 0 --tokens-per-s 0`, FastAPI)",
}


@dataclass(frozen=True)
class Options:
    duration_s: float
    warmup_s: float
    upstream: str
    log_level: str
    stream_requests: int
    critical_requests: int
    rss_marks: tuple[int, ...]
    out: Path | None
    # Seconds per realistic-latency run (0: skipped). wrk opens all its connections at once, so each run
    # starts with one synchronized wave that a run of 20 s holds 8% of the requests of, enough to move
    # p99 by a fifth (bench/realistic.py); 60 s brings it under 3%.
    realistic_s: float = 60.0
    only: str | None = None
    open_loop_s: float = 30.0  # measured seconds per open-loop run, after a warm-up (0: skipped)


@dataclass(frozen=True)
class RssMark:
    served: int  # chat completions the gateway has finished, by its own metrics
    rss_mib: float
    errors: int  # wrk's errors over the run that led here


def throughput_config(upstream_url: str) -> dict[str, Any]:
    """Every model on the one upstream: `direct` for passthrough, p1-p3 + agg for the pipeline `moa`."""
    return {
        "providers": {"up": {"type": "openai", "base_url": f"{upstream_url}/v1"}},
        "models": {name: {"provider": "up"} for name in ("direct", "p1", "p2", "p3", "agg")},
        "pipelines": {"moa": {"layers": [{"proposers": ["p1", "p2", "p3"]}], "aggregator": "agg"}},
    }


def timing_config(sim_url: str) -> dict[str, Any]:
    """Simulated delays per model: `critical` (100/200/300 ms proposers, 200 ms aggregator)."""

    def model(ttft_ms: float) -> dict[str, Any]:
        return {"provider": "sim", "params": {"simulate": {"ttft_ms": ttft_ms, "tokens_per_s": 0}}}

    slow = {f"p{ms:.0f}": model(ms) for ms in PROPOSER_MS}
    return {
        "providers": {"sim": {"type": "openai", "base_url": f"{sim_url}/v1"}},
        "models": {**slow, "agg": model(AGGREGATOR_MS)},
        "pipelines": {"critical": {"layers": [{"proposers": list(slow)}], "aggregator": "agg"}},
    }


@contextmanager
def upstream(kind: str, log_dir: Path, delays: dict[str, float] | None = None) -> Iterator[str]:
    """An upstream process on a free port; yields its base URL. `delays` (stub only): ms per model."""
    port = free_port()
    if kind == "stub":
        args = [str(BIN / "python"), "-m", "bench.stub_upstream", "--port", str(port)]
        for model, ms in (delays or {}).items():
            args += ["--delay", f"{model}={ms:g}"]
    else:
        args = [str(BIN / "moa-gateway"), "simulate", "--port", str(port), "--ttft-ms", "0"]
        args += ["--tokens-per-s", "0", "--log-level", "warning"]
    url = f"http://127.0.0.1:{port}"
    with server_process(f"upstream-{kind}-{port}", args, f"{url}/healthz", log_dir):
        yield url


@contextmanager
def gateway(config: dict[str, Any], log_dir: Path, log_level: str) -> Iterator[tuple[str, int]]:
    """`moa-gateway serve` on a generated config; yields its base URL and pid."""
    port = free_port()
    path = log_dir / f"gateway-{port}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    args = [str(BIN / "moa-gateway"), "serve", "--config", str(path), "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    env = {"MOA_LOG_LEVEL": log_level}
    with server_process(f"gateway-{port}", args, f"{url}/readyz", log_dir, env) as proc:
        yield url, proc.pid


def throughput(
    wrk: str, upstream_url: str, gateway_url: str, opts: Options
) -> dict[tuple[str, int], WrkResult]:
    """The (a)-(d) x concurrency grid; one warm-up run per scenario at the highest concurrency."""
    results = {}
    for name, (via_gateway, body) in SCENARIOS.items():
        url = (gateway_url if via_gateway else upstream_url) + CHAT
        progress(f"{name}: warm-up {opts.warmup_s:g} s")
        run_wrk(wrk, url, body, max(CONCURRENCY), opts.warmup_s)
        for c in CONCURRENCY:
            result = run_wrk(wrk, url, body, c, opts.duration_s)
            results[name, c] = result
            progress(
                f"{name} c={c}: {result.rps:.0f} req/s, p99 {result.p99_ms:.1f} ms, {result.errors} errors"
            )
    return results


def critical_path(gateway_url: str, requests: int) -> list[float]:
    """Latencies (ms) of sequential requests to the `critical` pipeline, after one warm-up."""
    body = {"model": "critical", "messages": MESSAGES}
    latencies = []
    with httpx.Client(timeout=30) as client:
        client.post(gateway_url + CHAT, json=body).raise_for_status()
        for _ in range(requests):
            started = time.perf_counter()
            client.post(gateway_url + CHAT, json=body).raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def rss_growth(wrk: str, upstream_url: str, log_dir: Path, opts: Options, rate: float) -> list[RssMark]:
    """A fresh gateway serves MoA requests at c=64 up to each mark in turn; RSS is read at each one.
    wrk stops by count; its time bound allows for a third of the rate measured in (c)."""
    marks = [RssMark(0, 0.0, 0)]
    body = {"model": "moa", "messages": MESSAGES}
    with gateway(throughput_config(upstream_url), log_dir, opts.log_level) as (url, pid):
        marks[0] = RssMark(0, rss_mib(pid), 0)
        for mark in opts.rss_marks:
            remaining = mark - served_requests(url)
            progress(f"RSS: {remaining:,} more MoA requests at c=64 (to {mark:,})")
            result = run_wrk(wrk, url + CHAT, body, 64, 10 + 3 * remaining / max(rate, 50), remaining)
            time.sleep(0.5)  # let the requests wrk abandoned when it stopped finish
            marks.append(RssMark(served_requests(url), rss_mib(pid), result.errors))
    return marks


def report(
    machine: list[str],
    opts: Options,
    table: dict[tuple[str, int], WrkResult],
    critical: list[float],
    streams: dict[str, StreamTiming],
    rss: list[RssMark],
) -> list[str]:
    """The markdown report: setup, the throughput table, then the derived measures against the targets."""
    lines = ["# moa-gateway benchmark", "", *(f"- {line}" for line in machine)]
    threads = "wrk -t2 (-t1 at c=1)"
    lines += [
        f"- upstream for (a)-(d): {UPSTREAMS[opts.upstream]}, its own process",
        f"- gateway: `moa-gateway serve`, its own process, MOA_LOG_LEVEL={opts.log_level}, other settings default",
        f"- load: {threads}, {opts.duration_s:g} s per run after a {opts.warmup_s:g} s warm-up per scenario; "
        "latency is to the end of the response ([DONE] for streams)",
        "",
        "| scenario | conc. | req/s | p50 ms | p90 ms | p99 ms | HTTP errors | socket errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (name, c), r in table.items():
        lines.append(
            f"| {name} | {c} | {r.rps:.0f} | {r.p50_ms:.2f} | {r.p90_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.status_errors} | {r.socket_errors} |"
        )
    a1, b1 = table[next(iter(SCENARIOS)), 1], table["(b) passthrough (1 model)", 1]
    moa = table["(c) MoA 3 proposers + aggregator", 64]
    overhead = b1.p50_ms - a1.p50_ms
    p50 = statistics.median(critical)
    lines += [
        "",
        "| measure | result | target | met |",
        "| --- | --- | --- | --- |",
        f"| passthrough overhead at c=1, (b) - (a) | p50 {overhead:.2f} ms (p90 {b1.p90_ms - a1.p90_ms:.2f} ms) "
        f"| p50 <= 1.2 ms | {_met(overhead <= 1.2)} |",
        f"| MoA 3+1 at c=64, instant upstream (4 upstream calls each) | {moa.rps:.0f} req/s, p99 {moa.p99_ms:.0f} ms, "
        f"{moa.errors} errors | >= 200 req/s, 0 errors, p99 < 1 s "
        f"| {_met(moa.rps >= 200 and moa.errors == 0 and moa.p99_ms < 1000)} |",
        f"| critical-path efficiency: MoA latency / (slowest proposer + aggregator), proposers "
        f"{'/'.join(f'{ms:g}' for ms in PROPOSER_MS)} ms, aggregator {AGGREGATOR_MS:g} ms, c=1 "
        f"| p50 {p50:.1f} ms / {CRITICAL_MS:g} ms = **{p50 / CRITICAL_MS:.3f}** (n={len(critical)}, "
        f"min {min(critical):.1f}, max {max(critical):.1f} ms) | <= 1.03 | {_met(p50 / CRITICAL_MS <= 1.03)} |",
    ]
    for label, (gw, direct) in {
        "instant upstream": (streams["moa instant"], streams["agg instant"]),
        f"aggregator TTFT {AGGREGATOR_MS:g} ms": (streams["moa ttft"], streams["agg ttft"]),
    }.items():
        lines.append(
            f"| streamed MoA, {label}: client's first byte / first content token, vs the aggregator "
            f"called directly | gateway {gw.first_byte_ms:.1f} / {gw.first_token_ms:.1f} ms; aggregator "
            f"{direct.first_byte_ms:.1f} / {direct.first_token_ms:.1f} ms; first token +"
            f"{gw.first_token_ms - direct.first_token_ms:.1f} ms (p50 of {opts.stream_requests}) | - | |"
        )
    if len(rss) > 1:
        first, last = rss[1], rss[-1]
        growth = (last.rss_mib / first.rss_mib - 1) * 100
        steps = ", ".join(f"{m.rss_mib:.1f} MiB after {m.served:,}" for m in rss)
        errors = sum(m.errors for m in rss)
        lines.append(
            f"| gateway RSS along MoA requests at c=64 (fresh process) | {steps.replace(' after 0', ' at start')}: "
            f"**{growth:+.1f}%** from {first.served:,} to {last.served:,}; {errors} errors | within +10% "
            f"| {_met(growth <= 10 and errors == 0)} |"
        )
    else:
        lines.append("| gateway RSS | skipped (--skip-rss) | within +10% | |")
    return lines


def _met(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    parser.add_argument("--quick", action="store_true", help="smoke run (< 1 min): 2 s runs, small RSS run")
    parser.add_argument("--skip-rss", action="store_true", help="skip the RSS run (the longest part)")
    parser.add_argument("--upstream", choices=sorted(UPSTREAMS), default="stub", help="default: stub")
    parser.add_argument(
        "--log-level", default="warning", help="the gateway's MOA_LOG_LEVEL (default warning)"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latest.md", help="report file")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--skip-realistic", action="store_true", help="skip the realistic-latency runs")
    parser.add_argument(
        "--only",
        choices=["realistic", "open_loop", "agent_loop", "side_by_side"],
        help="run only these scenarios (bench/<name>.py)",
    )
    parser.add_argument(
        "--open-loop-s", type=float, default=30.0, help="measured seconds per open-loop run (0: skipped)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    marks: tuple[int, ...] = (1_000, 3_000) if quick else (10_000, 50_000, 100_000)
    return Options(
        duration_s=2.0 if quick else args.duration,
        warmup_s=1.0 if quick else 2.0,
        upstream=args.upstream,
        log_level=args.log_level,
        stream_requests=10 if quick else 30,
        critical_requests=8 if quick else 30,
        rss_marks=() if args.skip_rss else marks,
        out=None if args.no_write else args.out,
        realistic_s=0.0 if args.skip_realistic else 8.0 if quick else 60.0,
        only=args.only,
        open_loop_s=5.0 if quick else args.open_loop_s,
    )


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the context managers, which stop every server


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if opts.only == "realistic":
        return realistic.main(["--duration", f"{opts.realistic_s or 60:g}"])
    if opts.only == "open_loop":
        return open_loop.main(["--duration", f"{opts.open_loop_s or 30:g}"])
    if opts.only == "agent_loop":
        agent_loop.main([])
        return 0
    if opts.only == "side_by_side":
        return side_by_side.main(["--duration", f"{opts.duration_s:g}", "--log-level", opts.log_level])
    wrk = ensure_wrk()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="moa-bench-") as tmp:
        log_dir = Path(tmp)
        streams: dict[str, StreamTiming] = {}
        with upstream(opts.upstream, log_dir) as up_url:
            with gateway(throughput_config(up_url), log_dir, opts.log_level) as (gw_url, _):
                table = throughput(wrk, up_url, gw_url, opts)
                progress("streams' first byte and token, instant upstream")
                body = {"messages": MESSAGES, "stream": True}
                streams["moa instant"] = stream_timing(
                    gw_url + CHAT, {**body, "model": "moa"}, opts.stream_requests
                )
                streams["agg instant"] = stream_timing(
                    up_url + CHAT, {**body, "model": "agg"}, opts.stream_requests
                )
            with (
                upstream("sim", log_dir) as sim_url,
                gateway(timing_config(sim_url), log_dir, opts.log_level) as (
                    timing_url,
                    _,
                ),
            ):
                progress(f"critical path: {opts.critical_requests} sequential requests")
                critical = critical_path(timing_url, opts.critical_requests)
            # The stub again, its aggregator answering after AGGREGATOR_MS: only the gateway differs
            # between the two timings (the simulator's own cost per call would count in the MoA's).
            with (
                upstream("stub", log_dir, {"agg": AGGREGATOR_MS}) as slow_url,
                gateway(throughput_config(slow_url), log_dir, opts.log_level) as (slow_gw_url, _),
            ):
                progress(f"streams' first byte and token, aggregator TTFT {AGGREGATOR_MS:g} ms")
                streams["moa ttft"] = stream_timing(
                    slow_gw_url + CHAT, {**body, "model": "moa"}, opts.stream_requests
                )
                streams["agg ttft"] = stream_timing(
                    slow_url + CHAT, {**body, "model": "agg"}, opts.stream_requests
                )
            with (
                upstream("sim", log_dir) as sim_url,
                gateway(cost_config(sim_url), log_dir, opts.log_level) as (
                    cost_url,
                    _,
                ),
            ):
                progress("early exit: calls and dollars per request, off and on")
                costs = cost_table(cost_url, 40)
            progress("agent loop: calls, tokens and dollars per user turn")
            costs += ["", *agent_loop.report(agent_loop.measure())]
            rate = table["(c) MoA 3 proposers + aggregator", 64].rps
            rss = rss_growth(wrk, up_url, log_dir, opts, rate) if opts.rss_marks else []
        beside = side_by_side.section(wrk, log_dir, opts.duration_s, opts.warmup_s, opts.log_level)
        slow = []
        if opts.realistic_s:
            slow = realistic.run_scenarios(wrk, log_dir, [500, 1000], [1, 2], opts.realistic_s, {})
        arrivals = []
        if opts.open_loop_s:
            warmup = min(5.0, opts.open_loop_s)
            arrivals = open_loop.run_scenarios(
                log_dir, list(open_loop.RATES), [1, 2], opts.open_loop_s, warmup, {}
            )
    lines = [*report(machine_description(wrk), opts, table, critical, streams, rss), "", *costs, "", *beside]
    if slow:
        lines += ["", *realistic.report(slow)]
    if arrivals:
        lines += ["", *open_loop.report(arrivals)]
    command = " ".join([".venv/bin/python -m bench.run", *(sys.argv[1:] if argv is None else argv)])
    lines.append(f"\n(whole run: {time.monotonic() - started:.0f} s; `{command}`)")
    print("\n".join(lines))
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text("\n".join(lines) + "\n")
        progress(f"written to {opts.out.relative_to(ROOT) if opts.out.is_relative_to(ROOT) else opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
