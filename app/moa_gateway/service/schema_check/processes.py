"""Worker processes for schema checks, each given one job at a time and killed when a job outlives its
deadline: a thread cannot be stopped mid-regex, a process can. One executor thread per process carries
a job there and back (blocking on pipes, never on the CPU), so the event loop only awaits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

import moa_gateway
from moa_gateway.service.schema_check.worker import HEADER

_SOURCE = str(Path(moa_gateway.__file__).resolve().parent.parent)  # where `moa_gateway` is imported from
_WORKER = [sys.executable, "-m", "moa_gateway.service.schema_check.worker"]


class _Child:
    """One worker process and its pipes."""

    def __init__(self) -> None:
        paths = [_SOURCE, *filter(None, [os.environ.get("PYTHONPATH")])]
        self.process = subprocess.Popen(
            _WORKER,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._jobs, self._replies = self.process.stdin.fileno(), self.process.stdout.fileno()
        os.set_blocking(self._jobs, False)

    def exchange(self, job: bytes, deadline: float) -> bytes | None:
        """The reply to `job`, or None if it does not come by `deadline`. Raises OSError/EOFError if the
        process is gone."""
        message = memoryview(HEADER.pack(len(job)) + job)
        while message:
            if not _wait(self._jobs, deadline, write=True):
                return None
            message = message[os.write(self._jobs, message) :]
        head = self._read(HEADER.size, deadline)
        return None if head is None else self._read(HEADER.unpack(head)[0], deadline)

    def _read(self, size: int, deadline: float) -> bytes | None:
        data = bytearray()
        while len(data) < size:
            if not _wait(self._replies, deadline, write=False):
                return None
            piece = os.read(self._replies, size - len(data))
            if not piece:
                raise EOFError("the schema check process exited")
            data += piece
        return bytes(data)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _wait(fd: int, deadline: float, *, write: bool) -> bool:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    ready = select.select([], [fd], [], remaining) if write else select.select([fd], [], [], remaining)
    return bool(ready[1] if write else ready[0])


LATE = "no worker process was free in time"
TIMED_OUT = "no verdict in time"  # the worker was killed
FAILED = "the worker process failed"


class CheckProcesses:
    """`await run(job)`: the worker's reply, or why there is none within `timeout_s` of the call (waiting
    for a free process included): LATE, TIMED_OUT (the worker is then killed) or FAILED. Processes start
    on first use."""

    def __init__(self, processes: int, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._slots: queue.SimpleQueue[_Child | None] = queue.SimpleQueue()
        for _ in range(processes):
            self._slots.put(None)
        self._executor = ThreadPoolExecutor(processes, thread_name_prefix="schema-check")
        self._live: set[_Child] = set()
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, job: dict[str, Any]) -> dict[str, Any] | str:
        deadline = time.monotonic() + self.timeout_s
        payload = orjson.dumps(job)
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._run, payload, deadline)
        try:
            # a job still queued then never starts; a running one stops at its own deadline
            reply = await asyncio.wait_for(future, self.timeout_s + 0.5)
        except TimeoutError:
            return LATE
        return reply if isinstance(reply, str) else dict(orjson.loads(reply))

    def _run(self, payload: bytes, deadline: float) -> bytes | str:
        if time.monotonic() >= deadline:
            return LATE
        child = self._slots.get_nowait()  # as many slots as executor threads: one is always free
        reply: bytes | str
        try:
            if child is None or child.process.poll() is not None:
                child = self._start(child)
            reply = child.exchange(payload, deadline) or TIMED_OUT
        except (OSError, EOFError):
            reply = FAILED
        if isinstance(reply, str) and child is not None:
            self._stop(child)
            child = None
        self._slots.put(child)
        return reply

    def _start(self, old: _Child | None) -> _Child:
        if old is not None:
            self._stop(old)
        with self._lock:
            if self._closed:
                raise OSError("closed")
            child = _Child()
            self._live.add(child)
        return child

    def _stop(self, child: _Child) -> None:
        with self._lock:
            self._live.discard(child)
        child.kill()

    def close(self) -> None:
        """Stop every process; a job in flight gets no reply."""
        with self._lock:
            self._closed = True
            children, self._live = list(self._live), set()
        for child in children:
            child.kill()
        self._executor.shutdown(wait=False, cancel_futures=True)
