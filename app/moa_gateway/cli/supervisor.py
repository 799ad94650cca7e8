"""The `serve --workers N` supervisor: starts the workers, replaces one that dies, stops them on a signal,
and fails loudly rather than restart in a loop that never serves.

- A worker that exits before it ever served (any status: a config the workers cannot run, a missing
  package, a port problem) stops the supervisor: every start would fail alike (the image once restarted
  316 workers in 2 minutes at 100% of a core, "Up" but never serving). One line says which worker, its
  exit status and its error; the exit status is `STARTUP_FAILURE`, so a container restarts or fails
  visibly.
- A worker that dies after serving is started again after a backoff that doubles with each recent death
  (0.5 s, 1 s, 2 s, 4 s); `CRASH_LOOP_DEATHS` deaths within `CRASH_LOOP_WINDOW_S` stop the supervisor
  (exit status 1), with one line.

"Served" is a message the worker sends on a pipe once its server listens (`workers._worker`); its error,
if it stops on one, follows on the same pipe.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from moa_gateway.cli.start_errors import STARTUP_FAILURE
from moa_gateway.telemetry.multiprocess_metrics import fold_dead

logger = logging.getLogger(__name__)

SERVING = "serving"  # the worker's first message: its server listens
ERROR = "error"  # ("error", text): why it stops
CRASH_LOOP_DEATHS = 5
CRASH_LOOP_WINDOW_S = 60.0
BACKOFF_S = 0.5  # the first restart's delay, doubled for each death in the window
_FORCE_AFTER_S = 15.0  # past the drain deadline, a worker still running is killed

WorkerTarget = Callable[[dict[str, Any], list[socket.socket], Connection], None]


@dataclass
class _Slot:
    """One of the N workers: the process running now (None while a restart waits) and what it said."""

    process: BaseProcess | None = None
    report: Connection | None = None
    restart_at: float | None = None
    served: bool = False
    error: str | None = None


class Supervisor:
    def __init__(
        self,
        target: WorkerTarget,
        overrides: dict[str, Any],
        sock: socket.socket,
        workers: int,
        grace_s: float,
        metrics_dir: Path,
        context: SpawnContext,
    ) -> None:
        self._target = target
        self._overrides = overrides
        self._sock = sock
        self._grace_s = grace_s
        self._metrics_dir = metrics_dir
        self._context = context
        self._slots = [_Slot() for _ in range(workers)]
        self._deaths: deque[float] = deque()  # after serving, within the crash-loop window
        self._stopped_by: int | None = None
        self._failure: int | None = None  # the exit status, once the supervisor gives up
        self._why = ""

    @property
    def stopped_by(self) -> int | None:
        """The signal that stopped the workers, if one did."""
        return self._stopped_by

    def run(self) -> int | None:
        """Supervise until a signal (None: see `stopped_by`) or a failure (its exit status)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in self._slots:
                self._start(slot)
            host, port = self._sock.getsockname()[:2]
            logger.info("serving on http://%s:%d with %d workers", host, port, len(self._slots))
            while self._stopped_by is None and self._failure is None:
                wait(self._sentinels(), timeout=self._next_wake())
                self._reap()
                self._restart_due()
            self._stop_all()
            if self._failure is not None:
                logger.error("%s", self._why)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self._failure

    def _start(self, slot: _Slot) -> None:
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=self._target, args=(self._overrides, [self._sock], writer), name="moa-gateway-worker"
        )
        process.start()
        writer.close()  # the worker holds its own copy
        slot.process, slot.report, slot.restart_at, slot.served, slot.error = (
            process,
            reader,
            None,
            False,
            None,
        )
        logger.info("worker %d started", process.pid)

    def _sentinels(self) -> list[int]:
        return [slot.process.sentinel for slot in self._slots if slot.process is not None]

    def _next_wake(self) -> float:
        due = [slot.restart_at for slot in self._slots if slot.restart_at is not None]
        return max(0.0, min([0.5, *(at - time.monotonic() for at in due)]))

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self._stopped_by is None:
            self._stopped_by = sig
            logger.info("received %s: draining %d workers", signal.Signals(sig).name, len(self._running()))
            # Our copy of the listening socket goes first: once each worker closes its own, new
            # connections are refused (a load balancer moves on) instead of waiting in the backlog.
            self._sock.close()
            self._send(signal.SIGTERM)
        elif sig == signal.SIGINT:
            self._send(signal.SIGINT)  # uvicorn's second SIGINT: stop now, without waiting for requests

    def _running(self) -> list[BaseProcess]:
        return [s.process for s in self._slots if s.process is not None and s.process.exitcode is None]

    def _send(self, sig: int) -> None:
        for process in self._running():
            assert process.pid is not None
            os.kill(process.pid, sig)

    def _reap(self) -> None:
        """Note each worker that exited, then stop, or schedule its restart."""
        for slot in self._slots:
            if slot.process is None or slot.process.exitcode is None or self._stopped_by is not None:
                continue
            pid, status = slot.process.pid, _status(slot.process.exitcode)
            self._bury(slot)
            if not slot.served:
                cause = slot.error or "it reported no error: see its output above"
                self._fail(STARTUP_FAILURE, f"worker {pid} {status} before it served: {cause}; stopping")
                return
            now = time.monotonic()
            self._deaths.append(now)
            while self._deaths[0] < now - CRASH_LOOP_WINDOW_S:
                self._deaths.popleft()
            said = f": {slot.error}" if slot.error else ""
            if len(self._deaths) >= CRASH_LOOP_DEATHS:
                died = f"{len(self._deaths)} workers died within {CRASH_LOOP_WINDOW_S:g} s"
                self._fail(1, f"worker {pid} {status}{said}; {died}: stopping (a crash loop)")
                return
            delay = BACKOFF_S * 2 ** (len(self._deaths) - 1)
            logger.warning("worker %d %s%s: starting another in %g s", pid, status, said, delay)
            slot.restart_at = now + delay

    def _fail(self, status: int, why: str) -> None:
        """Give up: the workers stop, then `why` is logged, last, so it ends the log."""
        self._failure, self._why = status, why

    def _bury(self, slot: _Slot) -> None:
        """Read what the dead worker said, and fold its metrics into the archive."""
        process, pid = slot.process, slot.process.pid if slot.process is not None else None
        assert process is not None and pid is not None
        if slot.report is not None:
            try:
                while slot.report.poll():
                    kind, text = slot.report.recv()
                    slot.served = slot.served or kind == SERVING
                    slot.error = text if kind == ERROR else slot.error
            except (EOFError, OSError):
                pass  # all it wrote is read
            slot.report.close()
        slot.process = slot.report = None  # no signal goes to it any more
        fold_dead(self._metrics_dir, pid)  # its counters archived, its files gone
        process.close()

    def _restart_due(self) -> None:
        if self._stopped_by is not None or self._failure is not None:
            return
        now = time.monotonic()
        for slot in self._slots:
            if slot.restart_at is not None and slot.restart_at <= now:
                self._start(slot)

    def _stop_all(self) -> None:
        """Every worker drains (SIGTERM, from `_on_signal`, or now after a failure) within its grace."""
        if self._failure is not None:
            self._send(signal.SIGTERM)
        deadline = time.monotonic() + self._grace_s + _FORCE_AFTER_S
        for slot in self._slots:
            if slot.process is None:
                continue
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.exitcode is None:
                logger.warning("worker %d did not stop in time: killing it", slot.process.pid)
                slot.process.kill()
                slot.process.join()
            self._bury(slot)


def _status(exitcode: int) -> str:
    if exitcode >= 0:
        return f"exited with status {exitcode}"
    try:
        return f"was killed by {signal.Signals(-exitcode).name}"
    except ValueError:
        return f"was killed by signal {-exitcode}"
