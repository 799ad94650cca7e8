"""The benchmark suite: the simulator and the gateway as separate processes on loopback, driven by wrk.

    .venv/bin/python -m bench.suite [--duration 10] [--quick]      (or: make bench)

Prints one table (and writes it to bench/results/latest.md): req/s and p50/p90/p99 at concurrency 1, 16
and 64 for (a) direct to the upstream, (b) single-model passthrough, (c) a 1-layer 3-proposer +
aggregator pipeline, (d) the same streamed; then the passthrough overhead (b - a), critical-path
efficiency, streams' time to first byte against the aggregator's own time to first token, the gateway's
RSS after 10k and 100k requests, and (c) at c=64 on each upstream transport. The gateway runs with its
default settings (info logs included, to a file). The upstream answers instantly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.critical_path import pipeline_config

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MOA_GATEWAY = str(Path(sys.executable).with_name("moa-gateway"))
CONCURRENCY = (1, 16, 64)
ASK = [{"role": "user", "content": "What makes a good benchmark?"}]


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk from Debian...", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: needs wrk (Debian/Ubuntu: apt-get install wrk)")
    return found


@contextmanager
def process(args: list[str], ready_url: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """Start a server process, wait until `ready_url` answers 200, yield its pid, stop it."""
    log = tempfile.NamedTemporaryFile(prefix="moa-bench-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"bench: {args[1]} exited; see {log.name}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {args[1]} did not start; see {log.name}")
            time.sleep(0.1)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk(wrk_bin: str, url: str, body: dict[str, Any], connections: int, duration_s: float) -> Run:
    stream = " stream" if body.get("stream") else ""
    progress(f"wrk -c{connections} {round(duration_s)}s model={body['model']}{stream} {url}")
    threads = 1 if connections == 1 else 2
    env = {**os.environ, "BODY": json.dumps(body)}
    seconds = max(1, round(duration_s))  # wrk takes whole seconds only
    args = [wrk_bin, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    args += ["-s", str(BENCH / "post.lua"), url]
    out = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    stats = json.loads(line.removeprefix("BENCH "))
    return Run(
        stats["requests"] / (stats["duration_us"] / 1e6),
        stats["p50_us"] / 1000,
        stats["p90_us"] / 1000,
        stats["p99_us"] / 1000,
        stats["non2xx"] + stats["socket_errors"],
    )


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def served(url: str) -> int:
    """Chat completion requests the gateway has answered, from its own metrics."""
    text = httpx.get(f"{url}/metrics").text
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("moa_requests_total")
        )
    )


def gateway_config(upstream_url: str) -> dict[str, Any]:
    provider = {"type": "openai", "base_url": f"{upstream_url}/v1"}
    return {
        "providers": {"up": provider},
        "models": {name: {"provider": "up"} for name in ["p1", "p2", "p3", "agg"]},
        "pipelines": {"moa": {"layers": [{"proposers": ["p1", "p2", "p3"]}], "aggregator": "agg"}},
    }


@contextmanager
def gateway(config: dict[str, Any], env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump(config))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        args = [MOA_GATEWAY, "serve", "--config", str(path), "--port", str(port)]
        with process(args, f"{url}/readyz", env) as pid:
            yield url, pid


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stream_first_bytes(url: str, requests: int) -> tuple[float, float]:
    """p50 time to the first byte, and to the first content token, of a streamed MoA response (ms)."""
    first_byte, first_token = [], []
    body = {"model": "moa", "messages": ASK, "stream": True}
    with httpx.Client(timeout=30) as client:
        for _ in range(requests):
            started = time.perf_counter()
            with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
                byte_at = token_at = None
                for chunk in response.iter_bytes():
                    now = time.perf_counter()
                    byte_at = byte_at or now
                    if token_at is None and b'"content":"' in chunk.replace(b'"content":""', b""):
                        token_at = now
            first_byte.append(((byte_at or 0) - started) * 1000)
            first_token.append(((token_at or 0) - started) * 1000)
    return statistics.median(first_byte), statistics.median(first_token)


def critical_path(upstream_url: str, requests: int) -> tuple[float, float]:
    """p50 latency of a 1-layer MoA with 100/200/300 ms proposers and a 200 ms aggregator, and p50/500 ms."""
    config = pipeline_config(upstream_url, 1, [100, 200, 300], 200)
    config["providers"]["sim"]["base_url"] = f"{upstream_url}/v1"
    with gateway(config) as (url, _), httpx.Client(timeout=30) as client:
        body = {"model": "moa", "messages": ASK}
        client.post(f"{url}/v1/chat/completions", json=body).raise_for_status()
        latencies = []
        for _ in range(requests):
            started = time.perf_counter()
            client.post(f"{url}/v1/chat/completions", json=body).raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
    p50 = statistics.median(latencies)
    return p50, p50 / 500


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--quick", action="store_true", help="short runs, RSS after 2k and 10k requests")
    args = parser.parse_args()
    duration = 3.0 if args.quick else args.duration
    rss_marks = (2_000, 10_000) if args.quick else (10_000, 100_000)
    wrk_bin = ensure_wrk()

    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    sim_args = [MOA_GATEWAY, "simulate", "--port", str(sim_port), "--ttft-ms", "0", "--tokens-per-s", "0"]
    with process(sim_args, f"{sim_url}/healthz"):
        results: dict[tuple[str, int], Run] = {}
        with gateway(gateway_config(sim_url)) as (gw_url, _):
            scenarios: dict[str, tuple[str, dict[str, Any]]] = {
                "(a) direct to upstream": (sim_url, {"model": "p1", "messages": ASK}),
                "(b) passthrough": (gw_url, {"model": "p1", "messages": ASK}),
                "(c) MoA 3+1": (gw_url, {"model": "moa", "messages": ASK}),
                "(d) MoA 3+1 streamed": (gw_url, {"model": "moa", "messages": ASK, "stream": True}),
            }
            for name, (base, body) in scenarios.items():
                for c in CONCURRENCY:
                    results[name, c] = wrk(wrk_bin, f"{base}/v1/chat/completions", body, c, duration)
            ttfb_ms, first_token_ms = stream_first_bytes(gw_url, 20)
        rss: list[tuple[int, float, int]] = []
        moa_rate = results["(c) MoA 3+1", 64].rps
        with gateway(gateway_config(sim_url)) as (rss_url, rss_pid):  # a fresh process, MoA requests only
            for mark in rss_marks:  # wrk runs by time: size each run from the measured rate, then count
                remaining = mark - served(rss_url)
                body = {"model": "moa", "messages": ASK}
                errors = wrk(
                    wrk_bin, f"{rss_url}/v1/chat/completions", body, 64, 1 + remaining / moa_rate
                ).errors
                rss.append((served(rss_url), rss_mib(rss_pid), errors))
        with gateway(gateway_config(sim_url), {"MOA_UPSTREAM_TRANSPORT": "httpx"}) as (httpx_url, _):
            httpx_run = wrk(
                wrk_bin, f"{httpx_url}/v1/chat/completions", {"model": "moa", "messages": ASK}, 64, duration
            )
        aggregator_ttft = gateway_config(sim_url)
        aggregator_ttft["models"]["agg"] = {"provider": "up", "params": {"simulate": {"ttft_ms": 200}}}
        with gateway(aggregator_ttft) as (ttft_url, _):
            ttfb_200, token_200 = stream_first_bytes(ttft_url, 20)
        critical_ms, efficiency = critical_path(sim_url, 10 if args.quick else 20)

    say(f"moa-gateway benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    say(
        f"machine: {os.cpu_count()} cores, {_cpu_model()}, Linux {platform.release()}, Python {platform.python_version()}"
    )
    say(
        f"wrk {duration:g} s per run; upstream: the simulator (`moa-gateway simulate`), instant answers; gateway defaults"
    )
    say()
    say("| scenario | conc. | req/s | p50 ms | p90 ms | p99 ms | errors |")
    say("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (name, c), r in results.items():
        say(f"| {name} | {c} | {r.rps:.0f} | {r.p50_ms:.2f} | {r.p90_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |")
    say()
    overhead = results["(b) passthrough", 1].p50_ms - results["(a) direct to upstream", 1].p50_ms
    say(f"passthrough overhead at c=1, p50 (b - a): {overhead:.2f} ms   (target <= 1.2 ms)")
    moa64 = results["(c) MoA 3+1", 64]
    say(
        f"MoA 3+1 at c=64: {moa64.rps:.0f} req/s, p99 {moa64.p99_ms:.0f} ms, {moa64.errors} errors   (target >= 200 req/s, 0 errors, p99 < 1 s)"
    )
    say(
        f"critical-path efficiency, proposers 100/200/300 ms + aggregator 200 ms: p50 {critical_ms:.1f} ms / 500 ms = {efficiency:.3f}   (target <= 1.03)"
    )
    say(
        f"streamed MoA, instant upstream: first byte {ttfb_ms:.2f} ms, first token {first_token_ms:.2f} ms (p50)"
    )
    say(
        f"streamed MoA, aggregator TTFT 200 ms: first byte {ttfb_200:.1f} ms, first token {token_200:.1f} ms (p50)"
    )
    (first_mark, first_rss, _), (second_mark, second_rss, rss_errors) = rss
    growth = (second_rss / first_rss - 1) * 100
    say(
        f"gateway RSS: {first_rss:.1f} MiB after {first_mark:,} MoA requests, {second_rss:.1f} MiB after {second_mark:,} ({growth:+.1f}%; {rss_errors} errors)   (target within +10%)"
    )
    say(
        f"MoA 3+1 at c=64 by upstream transport: aiohttp {moa64.rps:.0f} req/s (p99 {moa64.p99_ms:.0f} ms, {moa64.errors} errors), httpx {httpx_run.rps:.0f} req/s (p99 {httpx_run.p99_ms:.0f} ms, {httpx_run.errors} errors)"
    )
    out = BENCH / "results" / "latest.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


if __name__ == "__main__":
    main()
