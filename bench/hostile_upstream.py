"""What a hostile upstream costs the gateway in memory: for each answer below, a fresh `moa-gateway serve`
process gets one request whose model points at a hostile upstream (its own process), and the gateway's
peak RSS (VmHWM) and the client's status are reported.

    huge-body   a 1 GiB non-streamed answer, generated on the fly
    gzip-bomb   a 1 MiB gzip body that decompresses to 1 GiB of zeros
    huge-line   a streamed answer whose first SSE line is 100 MiB

    .venv/bin/python -m bench.hostile_upstream [--source DIR] [--only NAME ...]

`--source` runs the gateway from another checkout (e.g. a `git worktree` of an older commit) with this
venv. A gateway whose RSS passes `--max-rss-gib` is killed and the figure reached is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.cli import free_port

_MIB = 1024 * 1024
_GIB = 1024 * _MIB
SCENARIOS = {
    "huge-body": "a 1 GiB non-streamed answer",
    "gzip-bomb": "1 MiB of gzip, 1 GiB decompressed",
    "huge-line": "one 100 MiB SSE line",
}
_BLOCK = b"a" * _MIB


# The hostile upstream (`python -m bench.hostile_upstream --upstream PORT`) ----------------------------


def _gzip_bomb(decoded_bytes: int) -> bytes:
    """Zeros, compressed a block at a time: the 1 GiB is never in memory, here or anywhere."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    zeros = bytes(_MIB)
    parts = [compressor.compress(zeros) for _ in range(decoded_bytes // _MIB)]
    return b"".join(parts) + compressor.flush()


async def _serve_upstream(port: int) -> None:
    bomb = _gzip_bomb(_GIB)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(v)
                    for k, _, v in (line.partition(b":") for line in head.split(b"\r\n"))
                    if k.lower() == b"content-length"
                ),
                0,
            )
            model = json.loads(await reader.readexactly(length)).get("model")
            if model == "huge-body":
                prefix = b'{"choices":[{"index":0,"message":{"role":"assistant","content":"'
                suffix = b'"},"finish_reason":"stop"}]}'
                size = len(prefix) + _GIB + len(suffix)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
                writer.write(b"content-length: %d\r\nconnection: close\r\n\r\n" % size + prefix)
                for _ in range(_GIB // _MIB):
                    writer.write(_BLOCK)
                    await writer.drain()
                writer.write(suffix)
            elif model == "gzip-bomb":
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
                )
                writer.write(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(bomb) + bomb)
            else:  # huge-line
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
                )
                writer.write(b"data: ")
                for _ in range(100):
                    writer.write(_BLOCK)
                    await writer.drain()
                writer.write(b"\n\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the gateway gave up on the answer: as it should
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# The measurement ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    scenario: str
    status: str
    seconds: float
    idle_rss_mib: float
    peak_rss_mib: float
    aborted: bool


def _memory_mib(pid: int, field: str) -> float:
    """VmRSS or VmHWM of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the gateway did not start")


def _run_scenario(scenario: str, config: Path, source: Path, max_rss_mib: float, timeout_s: float) -> Outcome:
    port = free_port()
    env = {**os.environ, "MOA_CONFIG": str(config), "MOA_PORT": str(port), "MOA_LOG_LEVEL": "warning"}
    env["PYTHONPATH"] = str(source)  # ahead of the editable install: the gateway's code comes from `source`
    gateway_bin = Path(sys.executable).with_name("moa-gateway")
    gateway = subprocess.Popen([str(gateway_bin), "serve"], cwd=source, env=env, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, gateway)
        idle = _memory_mib(gateway.pid, "VmHWM")
        body = {
            "model": scenario,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": scenario == "huge-line",
        }
        result: dict[str, str] = {}

        def request() -> None:
            try:
                response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=timeout_s)
                result["status"] = str(response.status_code)
                if response.status_code == 200 and body["stream"]:
                    result["status"] += " (in-band error)" if '"error"' in response.text else ""
            except httpx.HTTPError as exc:
                result["status"] = type(exc).__name__

        started = time.monotonic()
        client = threading.Thread(target=request, daemon=True)
        client.start()
        aborted = False
        while client.is_alive():
            client.join(0.05)
            if _memory_mib(gateway.pid, "VmRSS") > max_rss_mib:
                aborted = True
                break
            if time.monotonic() - started > timeout_s + 5:
                result.setdefault("status", "no answer")
                break
        seconds = time.monotonic() - started
        peak = _memory_mib(gateway.pid, "VmHWM")
        return Outcome(scenario, result.get("status", "aborted"), seconds, idle, peak, aborted)
    finally:
        gateway.kill()
        gateway.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--only", nargs="*", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--max-rss-gib", type=float, default=20.0, help="kill a gateway past this RSS")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="the client's and the provider's")
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)  # run as the hostile upstream
    args = parser.parse_args()
    if args.upstream is not None:
        asyncio.run(_serve_upstream(args.upstream))
        return

    upstream_port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "bench.hostile_upstream", "--upstream", str(upstream_port)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert upstream.stdout is not None
        if upstream.stdout.readline().strip() != b"ready":
            raise SystemExit("the hostile upstream did not start")
        provider = {
            "type": "openai",
            "base_url": f"http://127.0.0.1:{upstream_port}/v1",
            "timeout_s": args.timeout_s,
            "retries": {"max_attempts": 1},
        }
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "hostile.yaml"
            models = {name: {"provider": "hostile"} for name in SCENARIOS}
            config.write_text(
                json.dumps({"providers": {"hostile": provider}, "models": models})
            )  # JSON is YAML
            print(f"gateway code: {args.source}", file=sys.stderr)
            print("| scenario | answer | status | time s | idle VmHWM MiB | peak VmHWM MiB |")
            print("| --- | --- | --- | --- | --- | --- |")
            for scenario in args.only:
                outcome = _run_scenario(
                    scenario, config, args.source, args.max_rss_gib * 1024, args.timeout_s
                )
                peak = f"{outcome.peak_rss_mib:.0f}" + (" (killed at the RSS cap)" if outcome.aborted else "")
                print(
                    f"| {scenario} | {SCENARIOS[scenario]} | {outcome.status} | {outcome.seconds:.1f} "
                    f"| {outcome.idle_rss_mib:.0f} | {peak} |",
                    flush=True,
                )
    finally:
        upstream.kill()
        upstream.wait()


if __name__ == "__main__":
    main()
