"""Realistic latencies: thousands of MoA requests in flight. Proposers answer in 1 s and the aggregator in
0.5 s (bench/stub_upstream.py with delays, its own process), so a request's critical path is 1.5 s and
the best a gateway can do at concurrency c is c / 1.5 req/s, each request taking 1.5 s.

    .venv/bin/python -m bench.realistic [--concurrency 500 1000] [--workers 1 2] [--duration 60]
                                        [--soak 600] [--env NAME=VALUE ...]

For each worker count and concurrency: req/s against that ideal (steady state: the gateway's own count of
completions between samples taken past the first 3 s and before the last 1.5 s, as wrk's whole-run rate
includes the first 1.5 s, when nothing can complete yet), p50 and p99 (wrk, whole run) against the
critical path (wrk opens its c connections at once, so every run starts with one wave of c requests
arriving together, which the gateway takes a few hundred ms to start at c=500: in a 20 s run that wave is
8% of the requests and sets p99, hence runs of 60 s), the gateway's CPU per request (utime + stime from /proc over the run, summed over every worker, divided
by the requests it finished meanwhile) and its RSS per 1000 requests in flight (RSS during the run minus
RSS at start, summed over the workers). Admission is set to the concurrency, per worker, so no request is
refused. `--soak` adds one long run at the first concurrency, reporting RSS every minute.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.harness import (
    WrkResult,
    ensure_wrk,
    machine_description,
    progress,
    rss_mib,
    run_wrk,
    served_requests,
    server_process,
)
from tests.support.cli import free_port

BIN = Path(sys.executable).parent
PROPOSER_S, AGGREGATOR_S = 1.0, 0.5
CRITICAL_S = PROPOSER_S + AGGREGATOR_S
BODY = {"model": "moa", "messages": [{"role": "user", "content": "What makes a good benchmark?"}]}
CHAT = "/v1/chat/completions"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    workers: int
    concurrency: int
    wrk: WrkResult
    steady_rps: float  # completions per second between the first and last sample, by the gateway's counter
    served: int  # chat completions the gateway finished during the run, by its own counter
    cpu_s: float  # gateway CPU over the run, all processes
    rss_start_mib: float
    rss_run_mib: float  # median of samples during the run
    in_flight: float  # median of moa_requests_in_flight samples during the run

    @property
    def ideal_rps(self) -> float:
        return self.concurrency / CRITICAL_S

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_s * 1000 / max(self.served, 1)

    @property
    def rss_per_1000_mib(self) -> float:
        return (self.rss_run_mib - self.rss_start_mib) / (max(self.in_flight, 1) / 1000)


def config(upstream_url: str) -> dict[str, Any]:
    return {
        "providers": {"up": {"type": "openai", "base_url": f"{upstream_url}/v1"}},
        "models": {name: {"provider": "up"} for name in ("p1", "p2", "p3", "agg")},
        "pipelines": {"moa": {"layers": [{"proposers": ["p1", "p2", "p3"]}], "aggregator": "agg"}},
    }


@contextmanager
def slow_upstream(log_dir: Path) -> Iterator[str]:
    port = free_port()
    args = [str(BIN / "python"), "-m", "bench.stub_upstream", "--port", str(port)]
    args += ["--delay-ms", str(PROPOSER_S * 1000), "--delay", f"agg={AGGREGATOR_S * 1000:g}"]
    url = f"http://127.0.0.1:{port}"
    with server_process(f"stub-slow-{port}", args, f"{url}/healthz", log_dir):
        yield url


@contextmanager
def gateway(
    upstream_url: str, workers: int, concurrency: int, log_dir: Path, env: dict[str, str]
) -> Iterator[tuple[str, int]]:
    port = free_port()
    path = log_dir / f"gateway-{port}.yaml"
    path.write_text(yaml.safe_dump(config(upstream_url), sort_keys=False))
    args = [str(BIN / "moa-gateway"), "serve", "--config", str(path), "--port", str(port)]
    args += ["--workers", str(workers)]
    url = f"http://127.0.0.1:{port}"
    env = {"MOA_LOG_LEVEL": "warning", "MOA_MAX_CONCURRENT_REQUESTS": str(concurrency), **env}
    with server_process(f"gateway-{port}", args, f"{url}/readyz", log_dir, env) as proc:
        deadline = time.monotonic() + 30
        while workers > 1 and len(worker_pids(url)) < workers:  # every worker serving
            if time.monotonic() > deadline:
                raise SystemExit("bench: the gateway's workers did not all start")
            time.sleep(0.2)
        yield url, proc.pid


def worker_pids(url: str) -> set[str]:
    """Workers that have opened their app: each labels its circuit states with its pid."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return set(re.findall(r'^moa_circuit_state\{model="p1",pid="(\d+)",state="closed"\}', text, re.MULTILINE))


def process_tree(pid: int) -> list[int]:
    """`pid` and every process under it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo += [int(child) for child in children]
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICKS


def total_rss_mib(pids: list[int]) -> float:
    return sum(rss_mib(pid) for pid in pids)


def in_flight_and_served(url: str) -> tuple[float, int]:
    """`moa_requests_in_flight` and the sum of `moa_requests_total`, from one scrape."""
    flying, served = 0.0, 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("moa_requests_in_flight{"):  # one series per endpoint
            flying += float(line.rsplit(" ", 1)[1])
        elif line.startswith("moa_requests_total{"):
            served += float(line.rsplit(" ", 1)[1])
    return flying, round(served)


def measure(wrk: str, url: str, pid: int, workers: int, concurrency: int, duration_s: float) -> Run:
    """A warm-up at the same concurrency, then the measured run, sampling RSS and in-flight meanwhile."""
    pids = process_tree(pid)
    rss_start = total_rss_mib(pids)
    progress(f"workers={workers} c={concurrency}: warm-up 5 s")
    run_wrk(wrk, url + CHAT, BODY, concurrency, 5, timeout_s=10)
    time.sleep(CRITICAL_S + 0.5)  # what wrk left in flight finishes
    samples: list[tuple[float, float, float, int]] = []  # (time, RSS, in flight, served)
    done = threading.Event()

    def sample() -> None:
        # Past the ramp-up, and not into wrk's last request times, when it stops sending
        ends_at = time.monotonic() + duration_s - CRITICAL_S
        done.wait(CRITICAL_S * 2)
        while not done.wait(2.0) and time.monotonic() < ends_at:
            samples.append((time.monotonic(), total_rss_mib(pids), *in_flight_and_served(url)))

    sampler = threading.Thread(target=sample, daemon=True)
    served_before, cpu_before = served_requests(url), cpu_seconds(pids)
    sampler.start()
    progress(f"workers={workers} c={concurrency}: {duration_s:g} s")
    result = run_wrk(wrk, url + CHAT, BODY, concurrency, duration_s, timeout_s=10)
    cpu_after, served_after = cpu_seconds(pids), served_requests(url)
    done.set()
    sampler.join()
    time.sleep(CRITICAL_S + 0.5)
    if not samples:  # a run too short to sample: wrk's figures and RSS now
        samples = [(time.monotonic(), total_rss_mib(pids), float(concurrency), served_after)]
    first, last = samples[0], samples[-1]
    return Run(
        workers,
        concurrency,
        result,
        (last[3] - first[3]) / (last[0] - first[0]) if last[0] > first[0] else result.rps,
        served_after - served_before,
        cpu_after - cpu_before,
        rss_start,
        statistics.median(s[1] for s in samples),
        statistics.median(s[2] for s in samples),
    )


def soak(
    wrk: str, url: str, pid: int, concurrency: int, duration_s: float
) -> tuple[list[tuple[int, float]], WrkResult]:
    """RSS (MiB, all workers) at every minute of one long run at `concurrency`, and the run."""
    pids = process_tree(pid)
    marks = [(0, total_rss_mib(pids))]
    done = threading.Event()

    def sample() -> None:
        minute = 0
        while not done.wait(60):
            minute += 1
            marks.append((minute, total_rss_mib(pids)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = run_wrk(wrk, url + CHAT, BODY, concurrency, duration_s, timeout_s=10)
    done.set()
    sampler.join()
    return marks, result


def report(runs: list[Run]) -> list[str]:
    lines = [
        f"Realistic latencies: 1 layer of 3 proposers answering in {PROPOSER_S:g} s, an aggregator in "
        f"{AGGREGATOR_S:g} s (critical path {CRITICAL_S:g} s); stub upstream and wrk in their own processes; "
        "admission set to the concurrency per worker.",
        "",
        "| workers | conc. | req/s steady (ideal) | of ideal | wrk req/s | p50 s (x path) | p99 s (x path) "
        "| errors | CPU ms / req | in flight | RSS MiB start / run | RSS MiB per 1000 in flight |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        p50, p99 = r.wrk.p50_ms / 1000, r.wrk.p99_ms / 1000
        lines.append(
            f"| {r.workers} | {r.concurrency} | {r.steady_rps:.0f} ({r.ideal_rps:.0f}) "
            f"| {r.steady_rps / r.ideal_rps:.1%} | {r.wrk.rps:.0f} | {p50:.2f} ({p50 / CRITICAL_S:.3f}) "
            f"| {p99:.2f} ({p99 / CRITICAL_S:.3f}) | {r.wrk.errors} | {r.cpu_ms_per_request:.2f} "
            f"| {r.in_flight:.0f} | {r.rss_start_mib:.0f} / {r.rss_run_mib:.0f} | {r.rss_per_1000_mib:.0f} |"
        )
    return lines


def run_scenarios(
    wrk: str,
    log_dir: Path,
    concurrency: list[int],
    workers: list[int],
    duration_s: float,
    env: dict[str, str],
) -> list[Run]:
    runs = []
    with slow_upstream(log_dir) as up_url:
        for count in workers:
            for c in concurrency:
                with gateway(up_url, count, max(concurrency), log_dir, env) as (url, pid):
                    runs.append(measure(wrk, url, pid, count, c, duration_s))
                    run = runs[-1]
                    progress(
                        f"workers={count} c={c}: {run.steady_rps:.0f} req/s of {run.ideal_rps:.0f}, "
                        f"p50 {run.wrk.p50_ms:.0f} ms, p99 {run.wrk.p99_ms:.0f} ms, "
                        f"{run.cpu_ms_per_request:.2f} CPU ms/req, {run.wrk.errors} errors"
                    )
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per measured run")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of one long run (RSS per minute)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="gateway env")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    wrk = ensure_wrk()
    load = Path("/proc/loadavg").read_text().split()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="moa-bench-realistic-") as tmp:
        runs = run_scenarios(wrk, Path(tmp), args.concurrency, args.workers, args.duration, env)
        marks: list[tuple[int, float]] = []
        long_run: WrkResult | None = None
        if args.soak:
            with (
                slow_upstream(Path(tmp)) as up_url,
                gateway(up_url, args.workers[0], args.concurrency[0], Path(tmp), env) as (url, pid),
            ):
                progress(f"soak: {args.soak:g} s at c={args.concurrency[0]}")
                marks, long_run = soak(wrk, url, pid, args.concurrency[0], args.soak)
    lines = [*(f"- {line}" for line in machine_description(wrk)), "", *report(runs)]
    if marks and long_run is not None:
        steps = ", ".join(f"{mib:.0f} MiB at {minute} min" for minute, mib in marks)
        lines += [
            "",
            f"RSS over a {args.soak:g} s run at c={args.concurrency[0]}, {args.workers[0]} worker(s): {steps}; "
            f"{long_run.rps:.0f} req/s, p50 {long_run.p50_ms / 1000:.2f} s, p99 {long_run.p99_ms / 1000:.2f} s, "
            f"{long_run.errors} errors",
        ]
    command = " ".join([".venv/bin/python -m bench.realistic", *(sys.argv[1:] if argv is None else argv)])
    lines.append(f"\n(1-min load average before: {load}; {time.monotonic() - started:.0f} s; `{command}`)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
