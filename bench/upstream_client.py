"""CPU per upstream call of each upstream client (MOA_UPSTREAM_TRANSPORT), the way the gateway calls them:
an endpoint's `post`, the body read whole, the response closed; against bench/stub_upstream.py in its own
process, `--concurrency` calls in flight.

    .venv/bin/python -m bench.upstream_client [--calls 20000] [--concurrency 50] [--rounds 3]

Clients are measured in turn, round after round (A B C A B C ...), each in a fresh process, so a busy
moment of the machine falls on every client alike; CPU is this process's (time.process_time).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import uvloop

from bench.harness import progress
from bench.run import upstream
from moa_gateway.settings import Settings
from moa_gateway.upstream.body import read_body
from moa_gateway.upstream.client import upstream_client

CLIENTS = ("httptools", "aiohttp", "httpx")
BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "Why is the sky blue? " * 20}]})
HEADERS = {"content-type": "application/json", "accept": "application/json", "authorization": "Bearer x"}


async def measure(transport: str, url: str, calls: int, concurrency: int) -> float:
    """Microseconds of CPU per call, after a warm-up that opens the connections."""
    client = upstream_client(Settings(upstream_transport=transport), concurrency)
    endpoint = client.endpoint(url + "/chat/completions", HEADERS, connect_s=5, read_s=30)
    gate = asyncio.Semaphore(concurrency)

    async def call() -> bytes:
        async with gate:
            response = await endpoint.post(BODY, [("x-request-id", "bench")])
            try:
                return await read_body(response, 1 << 20)
            finally:
                await response.aclose()

    await asyncio.gather(*(call() for _ in range(concurrency * 4)))
    started = time.process_time()
    answers = await asyncio.gather(*(call() for _ in range(calls)))
    spent = time.process_time() - started
    assert all(b'"choices"' in answer for answer in answers)
    await client.aclose()
    return spent * 1e6 / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("CLIENT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(uvloop.run(measure(args.one[0], args.one[1], args.calls, args.concurrency)))
        return 0
    results: dict[str, list[float]] = {client: [] for client in CLIENTS}
    with upstream("stub", Path(tempfile.mkdtemp(prefix="moa-bench-client-"))) as url:
        for round_ in range(args.rounds):
            for client in CLIENTS:
                command = [sys.executable, "-m", "bench.upstream_client", "--one", client, f"{url}/v1"]
                command += ["--calls", str(args.calls), "--concurrency", str(args.concurrency)]
                result = subprocess.run(command, capture_output=True, text=True, check=True)
                results[client].append(float(result.stdout.strip()))
                progress(f"round {round_ + 1}: {client} {results[client][-1]:.1f} us CPU per call")
    print(f"| client | us of CPU per call ({args.concurrency} in flight, {args.calls} calls), each round |")
    print("| --- | --- |")
    for client, values in results.items():
        print(f"| {client} | {' / '.join(f'{v:.1f}' for v in values)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
