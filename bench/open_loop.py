"""Open-loop load: MoA 3+1 requests arriving at Poisson times at a set rate, whatever the answers' latency
(bench/poisson.py), against the gateway with the realistic stub upstream of bench/realistic.py (proposers
answer in 1 s, the aggregator in 0.5 s: a 1.5 s critical path, so rate x 1.5 requests in flight).

    .venv/bin/python -m bench.open_loop [--rate 333 666] [--duration 30] [--workers 1 2] [--warmup 5]
                                        [--env NAME=VALUE ...]

For each worker count and rate: the rate achieved (answers per second over the measured window), p50 and
p99 latency from each request's due time against the critical path, errors, the gateway's CPU per
request (utime + stime from /proc over the window, summed over every worker, divided by the answers that
arrived in the window), its RSS (start and median during the run, all workers), and the generator's own
CPU (ms per request and share of one core), which must stay well under a core for the figures to be the
gateway's. Admission is set to three times the expected in-flight count, per worker, so none is refused.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import uvloop

from bench.harness import machine_description, progress
from bench.poisson import Outcome, generate, process_cpu_s, request_bytes
from bench.realistic import (
    BODY,
    CHAT,
    CRITICAL_S,
    cpu_seconds,
    gateway,
    process_tree,
    slow_upstream,
    total_rss_mib,
)

RATES = (333.0, 666.0)  # ~500 and ~1000 requests in flight (issue 27)


@dataclass(frozen=True)
class OpenLoopRun:
    workers: int
    rate: float
    window_s: float
    outcome: Outcome
    gateway_cpu_s: float  # over the window, every worker
    generator_cpu_s: float  # over the window
    rss_start_mib: float
    rss_run_mib: float  # median of 1 s samples over the window

    @property
    def achieved_rps(self) -> float:
        return self.outcome.completed_in_window / self.window_s

    def quantile_s(self, q: float) -> float:
        values = sorted(self.outcome.latencies_s)
        return values[min(len(values) - 1, int(q * len(values)))] if values else math.nan

    @property
    def errors(self) -> int:
        return self.outcome.status_errors + self.outcome.socket_errors

    @property
    def gateway_ms_per_request(self) -> float:
        return self.gateway_cpu_s * 1000 / max(self.outcome.completed_in_window, 1)

    @property
    def generator_ms_per_request(self) -> float:
        return self.generator_cpu_s * 1000 / max(self.outcome.completed_in_window, 1)


def measure(url: str, pid: int, workers: int, rate: float, duration_s: float, warmup_s: float) -> OpenLoopRun:
    """One run: `warmup_s` of arrivals at `rate`, then the measured `duration_s`, then the stragglers."""
    pids = process_tree(pid)
    rss_start = total_rss_mib(pids)
    host, port = url.removeprefix("http://").split(":")
    request = request_bytes(host, int(port), CHAT, orjson.dumps(BODY))
    marks: dict[str, tuple[float, float, float]] = {}  # edge: (time, gateway CPU, generator CPU)
    rss: list[float] = []
    sampling = threading.Event()

    def sample_rss() -> None:
        while not sampling.wait(1.0):
            rss.append(total_rss_mib(pids))

    def on_window(edge: str) -> None:
        marks[edge] = (time.monotonic(), cpu_seconds(pids), process_cpu_s())
        if edge == "start":
            threading.Thread(target=sample_rss, daemon=True).start()
        else:
            sampling.set()

    progress(f"open loop, workers={workers}: {rate:g} req/s, {warmup_s:g} s warm-up + {duration_s:g} s")
    outcome = uvloop.run(
        generate(host, int(port), request, rate, duration_s, warmup_s, CRITICAL_S * 10, on_window)
    )
    (t0, gw0, gen0), (t1, gw1, gen1) = marks["start"], marks["end"]
    return OpenLoopRun(
        workers,
        rate,
        t1 - t0,
        outcome,
        gw1 - gw0,
        gen1 - gen0,
        rss_start,
        statistics.median(rss) if rss else total_rss_mib(pids),
    )


def run_scenarios(
    log_dir: Path,
    rates: list[float],
    workers: list[int],
    duration_s: float,
    warmup_s: float,
    env: dict[str, str],
) -> list[OpenLoopRun]:
    """Every worker count x rate, each on a fresh gateway, one stub upstream for all."""
    runs = []
    admission = max(100, math.ceil(max(rates) * CRITICAL_S * 3))
    with slow_upstream(log_dir) as up_url:
        for count in workers:
            for rate in rates:
                with gateway(up_url, count, admission, log_dir, env) as (url, pid):
                    run = measure(url, pid, count, rate, duration_s, warmup_s)
                runs.append(run)
                progress(
                    f"open loop, workers={count}, {rate:g} req/s: {run.achieved_rps:.0f} req/s, "
                    f"p50 {run.quantile_s(0.5):.3f} s, p99 {run.quantile_s(0.99):.3f} s, {run.errors} errors, "
                    f"gateway {run.gateway_ms_per_request:.2f} CPU ms/req, generator "
                    f"{run.generator_cpu_s / run.window_s:.0%} of a core"
                )
    return runs


def report(runs: list[OpenLoopRun]) -> list[str]:
    lines = [
        f"Open loop: MoA 3+1 requests at Poisson arrivals (bench/open_loop.py), proposers {CRITICAL_S - 0.5:g} s, "
        f"aggregator 0.5 s (critical path {CRITICAL_S:g} s); latency from each request's due time; stub "
        "upstream, generator and gateway in their own processes.",
        "",
        "| workers | rate req/s | achieved req/s | p50 s (x path) | p99 s (x path) | errors | gateway CPU ms / req "
        "| RSS MiB start / run | generator CPU ms / req (% core) | generator lag p99 ms (due to written, connecting included) | window s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        p50, p99 = r.quantile_s(0.5), r.quantile_s(0.99)
        lags = sorted(r.outcome.lags_s)
        lag = lags[int(0.99 * (len(lags) - 1))] * 1000 if lags else math.nan
        lines.append(
            f"| {r.workers} | {r.rate:g} | {r.achieved_rps:.0f} | {p50:.3f} ({p50 / CRITICAL_S:.3f}) "
            f"| {p99:.3f} ({p99 / CRITICAL_S:.3f}) | {r.errors} | {r.gateway_ms_per_request:.2f} "
            f"| {r.rss_start_mib:.0f} / {r.rss_run_mib:.0f} | {r.generator_ms_per_request:.2f} "
            f"({r.generator_cpu_s / r.window_s:.0%}) | {lag:.1f} | {r.window_s:.0f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, nargs="+", default=list(RATES), help="arrivals per second")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="gateway worker counts")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of measured arrivals")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of arrivals before the window")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="gateway env")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    load = Path("/proc/loadavg").read_text().split()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="moa-bench-open-") as tmp:
        runs = run_scenarios(Path(tmp), args.rate, args.workers, args.duration, args.warmup, env)
    machine = [line.split("; load generator")[0] for line in machine_description("wrk")]
    lines = [
        *(f"- {line}" for line in machine),
        "- load generator: bench/poisson.py (uvloop)",
        "",
        *report(runs),
    ]
    command = " ".join([".venv/bin/python -m bench.open_loop", *(sys.argv[1:] if argv is None else argv)])
    lines.append(f"\n(1-min load average before: {load}; {time.monotonic() - started:.0f} s; `{command}`)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
