"""Pieces of the benchmark harness (bench/run.py): server processes in their own process groups, wrk runs
bounded in time (and optionally in count), streamed-response timing, and a description of the machine."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WRK_SCRIPT = BENCH / "wrk_post.lua"


def progress(message: str) -> None:
    """A progress line on stderr; stdout carries only the table."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian when missing and we are root, else a clear exit."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        progress("wrk is missing: apt-get install -y wrk")
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=300)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True, timeout=300
        )
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit("bench: needs wrk on PATH (Debian/Ubuntu: apt-get install -y wrk)")
    return found


@contextmanager
def server_process(
    name: str,
    args: list[str],
    ready_url: str,
    log_dir: Path,
    env: dict[str, str] | None = None,
    ready_timeout_s: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `args` in a new process group, wait until `ready_url` answers 200, and on exit stop the whole
    group (SIGTERM, then SIGKILL after 10 s), whatever happened in between."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise SystemExit(
                    f"bench: {name} exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}"
                )
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {name} did not get ready in {ready_timeout_s:g} s; see {log_path}")
            time.sleep(0.05)
        yield proc
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[Any]) -> None:
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: completed responses, rate, latency percentiles (ms) and error counts."""

    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    status_errors: int  # responses with a status >= 400 (wrk's "Non-2xx or 3xx")
    socket_errors: int  # connect + read + write errors and timeouts

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors


def run_wrk(
    wrk: str,
    url: str,
    body: dict[str, Any],
    connections: int,
    duration_s: float,
    max_requests: int = 0,
    timeout_s: float = 5.0,
) -> WrkResult:
    """POST `body` to `url` from `connections` connections for `duration_s`; with `max_requests`, stop
    once that many responses have arrived (or at `duration_s`, whichever is first)."""
    threads = min(2, connections)
    per_thread = -(-max_requests // threads) if max_requests else 0
    env = {**os.environ, "BENCH_BODY": json.dumps(body), "BENCH_MAX_PER_THREAD": str(per_thread)}
    args = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s"]
    args += ["--timeout", f"{timeout_s:g}s", "-s", str(WRK_SCRIPT), url]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    # wrk stops by itself at -d; the watchdog only covers a wrk that hangs.
    watchdog = threading.Timer(duration_s + 30, proc.kill)
    watchdog.start()
    lines, stopped = [], 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("WRKSTOP"):
                stopped += 1
                if stopped == threads:  # every thread has its count: end the run now, not at -d
                    proc.send_signal(signal.SIGINT)
        stderr = proc.stderr.read() if proc.stderr else ""
        proc.wait(timeout=30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary = next((line for line in lines if line.startswith("WRKJSON ")), None)
    if summary is None:
        raise SystemExit(f"bench: wrk gave no summary (exit {proc.returncode}):\n{''.join(lines)}{stderr}")
    stats = json.loads(summary.removeprefix("WRKJSON "))
    return WrkResult(
        requests=stats["requests"],
        duration_s=stats["duration_us"] / 1e6,
        p50_ms=stats["p50_us"] / 1000,
        p90_ms=stats["p90_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        status_errors=stats["status_errors"],
        socket_errors=sum(stats[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")),
    )


@dataclass(frozen=True)
class StreamTiming:
    """Client-side p50s (ms) of streamed responses: response head, first body byte, first content token,
    and the whole stream."""

    headers_ms: float
    first_byte_ms: float
    first_token_ms: float
    total_ms: float


def stream_timing(url: str, body: dict[str, Any], requests: int) -> StreamTiming:
    """Time `requests` sequential streamed chat completions (after one warm-up), one connection."""
    heads, bytes_, tokens, totals = [], [], [], []
    with httpx.Client(timeout=30) as client:
        for i in range(requests + 1):
            started = time.perf_counter()
            with client.stream("POST", url, json=body) as response:
                response.raise_for_status()
                head_at = time.perf_counter()
                byte_at = token_at = None
                buffer = b""
                for piece in response.iter_raw():
                    now = time.perf_counter()
                    byte_at = byte_at or now
                    if token_at is None:
                        buffer += piece
                        *events, buffer = buffer.split(b"\n\n")
                        if any(_has_content(event) for event in events):
                            token_at = now
            ended = time.perf_counter()
            if i == 0:
                continue  # warm-up
            heads.append(head_at - started)
            bytes_.append((byte_at or ended) - started)
            tokens.append((token_at or ended) - started)
            totals.append(ended - started)

    def p50_ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    return StreamTiming(p50_ms(heads), p50_ms(bytes_), p50_ms(tokens), p50_ms(totals))


def _has_content(event: bytes) -> bool:
    """Whether one SSE event is a chunk with a non-empty delta.content."""
    for line in event.split(b"\n"):
        if line.startswith(b"data: {"):
            chunk = orjson.loads(line[6:])
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    return True
    return False


def rss_mib(pid: int) -> float:
    """Resident set size of a process, from /proc (MiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def served_requests(base_url: str) -> int:
    """Chat completions the gateway has finished, by its own `moa_requests_total`."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return round(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("moa_requests_total{")
        )
    )


def machine_description(wrk: str) -> list[str]:
    """Where a result came from: CPU, kernel, Python, key library versions, wrk, the commit."""
    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False).stdout.split(" [")[
        0
    ]
    versions = ", ".join(f"{name} {_version(name)}" for name in ("uvicorn", "fastapi", "httpx", "aiohttp"))
    return [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; commit: {_commit()}",
        f"machine: {len(os.sched_getaffinity(0))} CPUs ({cpu}), {_memory()} RAM, Linux {platform.release()}",
        f"software: Python {platform.python_version()}, {versions}; load generator: {wrk_version.strip()}",
    ]


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


def _memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return "?"


def _commit() -> str:
    """HEAD, marked dirty when app/ differs from it (read-only git calls)."""
    git = ["git", "--no-optional-locks", "-C", str(ROOT)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "app"], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + (" + uncommitted changes in app/" if dirty.stdout.strip() else "")
