"""Slow-body attack on `moa-gateway serve` (default settings, the demo's simulated config): 256 connections
each send a chat request head declaring 1000 bytes, then one body byte every 10 s, while a normal chat
request goes out every second. Prints the normal requests' statuses and when the gateway closed the
dribbling connections. Stops by itself after `--duration` seconds at most.

    .venv/bin/python -m bench.dribble [--connections 256] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import ROOT, progress, server_process
from tests.support.cli import free_port

CONFIG = ROOT / "config" / "moa.yaml"
NORMAL = {"model": "moa-lite", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}
HEAD = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    b"content-length: 1000\r\n\r\n"
)


async def dribbler(port: int, every_s: float, until: float) -> tuple[float | None, int | None]:
    """One slow client: seconds from its head to the gateway closing the connection (None: still open
    at `until`), and the status the gateway answered before closing, if any."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEAD)
    await writer.drain()
    sent_head = time.monotonic()

    async def trickle() -> None:
        try:
            while True:
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(every_s)
        except OSError:
            pass

    trickling = asyncio.create_task(trickle())
    try:
        answer = await asyncio.wait_for(reader.read(), max(0.0, until - time.monotonic()))
    except TimeoutError:
        return None, None
    except OSError:
        answer = b""
    finally:
        trickling.cancel()
        writer.close()
    closed_after = time.monotonic() - sent_head
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return closed_after, status


async def normal_requests(url: str, stop: asyncio.Event, until: float) -> list[tuple[float, str]]:
    """A chat completion every second until `stop`: (seconds since the start, status or error)."""
    results: list[tuple[float, str]] = []
    started = time.monotonic()

    async def one(client: httpx.AsyncClient) -> None:
        sent = time.monotonic() - started
        try:
            response = await client.post(
                "/v1/chat/completions", json=NORMAL, timeout=max(1.0, until - time.monotonic())
            )
            results.append((sent, str(response.status_code)))
        except httpx.HTTPError as exc:
            results.append((sent, type(exc).__name__))

    async with httpx.AsyncClient(base_url=url) as client, asyncio.TaskGroup() as group:
        while not stop.is_set() and time.monotonic() < until - 1:
            group.create_task(one(client))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    return sorted(results)


async def attack(url: str, port: int, connections: int, every_s: float, duration_s: float) -> None:
    began = time.monotonic()
    until = began + duration_s
    dribblers = [asyncio.create_task(dribbler(port, every_s, until)) for _ in range(connections)]
    stop = asyncio.Event()
    normal = asyncio.create_task(normal_requests(url, stop, until))
    closed = await asyncio.gather(*dribblers)
    all_closed_at = time.monotonic() - began
    if all(after is not None for after, _ in closed):
        await asyncio.sleep(min(2.0, max(0.0, until - time.monotonic() - 1)))  # a few requests after
    stop.set()
    statuses = await normal

    print(f"dribbling connections: {connections}, one body byte every {every_s:g} s (content-length 1000)")
    times = [after for after, _ in closed if after is not None]
    answers = collections.Counter(str(status or "reset") for after, status in closed if after is not None)
    if times:
        print(
            f"closed by the gateway: {len(times)}/{connections}, answered {dict(answers)}; seconds from "
            f"head to close: min {min(times):.2f}, p50 {statistics.median(times):.2f}, max {max(times):.2f}"
        )
    if len(times) == connections:
        print(f"all {connections} closed {all_closed_at:.2f} s after the attack began")
    else:
        print(f"still open when the bench stopped at {duration_s:g} s: {connections - len(times)}")
    counts = collections.Counter(status for _, status in statuses)
    print(f"normal chat requests, one a second: {len(statuses)} sent, statuses {dict(counts)}")
    print("  " + " ".join(f"{sent:.0f}s:{status}" for sent, status in statuses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--every-s", type=float, default=10.0, help="seconds between body bytes")
    parser.add_argument("--duration", type=float, default=60.0, help="stop after this many seconds")
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = [sys.executable, "-m", "moa_gateway.cli", "serve", "--config", str(CONFIG), "--port", str(port)]
    with tempfile.TemporaryDirectory() as log_dir:
        env = {"MOA_LOG_LEVEL": "warning"}
        with server_process("gateway", gateway, f"{url}/readyz", Path(log_dir), env):
            progress(f"gateway on {url}; attacking for at most {args.duration:g} s")
            asyncio.run(attack(url, port, args.connections, args.every_s, args.duration))


if __name__ == "__main__":
    main()
