"""`moa-gateway serve --workers N`: N worker processes serving one listening socket, supervised.

The supervisor binds the socket, starts the workers (spawned: each imports the app afresh, after the
Prometheus multiprocess directory is set, so every metric is written to files there that `/metrics` on
any worker reads back as one process group), starts a worker again if one dies, and on SIGTERM or SIGINT
sends each worker SIGTERM, which drains it as it would a single process; a second SIGINT forces them.
Admission (`MOA_MAX_CONCURRENT_REQUESTS`), circuit breakers and the upstream pool are per worker.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from moa_gateway.settings import Settings
from moa_gateway.telemetry.multiprocess_metrics import fold_dead

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STARTUP_FAILURE = 3  # uvicorn's exit status for a worker that never served
_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
_FORCE_AFTER_S = 15.0  # past the drain deadline, a worker still running is killed


def worker_count(setting: int | Literal["auto"]) -> int:
    """Workers to start: as set, or for `auto` one per CPU this process may run on, within a cgroup
    (container) CPU limit rounded up."""
    if setting != "auto":
        return setting
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = _CGROUP_CPU_MAX.read_text().split()
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))


def serve_workers(overrides: dict[str, Any], settings: Settings, workers: int) -> int:
    """Serve with `workers` processes until a signal; the exit status is a single process's."""
    metrics_dir, owned = _metrics_dir()
    try:
        try:
            sock = _listen(settings.host, settings.port)
        except OSError as exc:
            logger.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
            return 1
        try:
            stopped_by = _Supervisor(overrides, sock, workers, settings.shutdown_grace_s, metrics_dir).run()
        finally:
            sock.close()
    finally:
        if owned:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    if stopped_by is None:
        return 1
    # As a single uvicorn process does: exit by the signal that stopped us, so the status reports it.
    signal.signal(stopped_by, signal.SIG_DFL)
    signal.raise_signal(stopped_by)
    return 0


def _metrics_dir() -> tuple[Path, bool]:
    """PROMETHEUS_MULTIPROC_DIR if set, emptied of a previous run's files (they would add to this run's
    counters); else a new directory in /dev/shm or the temporary one, removed at exit. Workers inherit it
    in the environment."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return path, False
    # Memory-backed where there is one (/dev/shm is writable under a read-only root filesystem too).
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    try:
        path = Path(tempfile.mkdtemp(prefix="moa-gateway-metrics-", dir=shm))
    except OSError as exc:
        raise SystemExit(
            f"moa-gateway: several workers need a writable directory for their metrics ({exc}): set "
            f"{MULTIPROC_ENV}"
        ) from None
    os.environ[MULTIPROC_ENV] = str(path)
    return path, True


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # uvicorn's default backlog
    sock.set_inheritable(True)
    return sock


def _worker(overrides: dict[str, Any], sockets: list[socket.socket]) -> None:
    """A worker process: the same settings and config as the supervisor, served on its socket."""
    from moa_gateway.cli.serve import serve_app
    from moa_gateway.config import ConfigError, load_config
    from moa_gateway.telemetry.logs import configure_logging

    settings = Settings(**overrides)
    configure_logging(settings.log_level, settings.log_format, settings.max_log_value_chars)
    try:
        config = load_config(settings.config)
    except ConfigError as exc:  # the file changed since the supervisor read it
        logger.error("worker %d: %s", os.getpid(), exc)
        raise SystemExit(STARTUP_FAILURE) from None
    serve_app(settings, config, sockets)


class _Supervisor:
    def __init__(
        self, overrides: dict[str, Any], sock: socket.socket, workers: int, grace_s: float, metrics_dir: Path
    ) -> None:
        self._overrides = overrides
        self._metrics_dir = metrics_dir
        self._sock = sock
        self._count = workers
        self._grace_s = grace_s
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[BaseProcess] = []
        self._stopped_by: int | None = None
        self._failed = False

    def run(self) -> int | None:
        """Supervise until a signal (returned) or a worker that cannot start (None)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._workers = [self._start() for _ in range(self._count)]
            host, port = self._sock.getsockname()[:2]
            logger.info("serving on http://%s:%d with %d workers", host, port, self._count)
            while self._stopped_by is None and not self._failed:
                wait([w.sentinel for w in self._workers], timeout=0.5)
                self._replace_dead()
            self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return None if self._failed else self._stopped_by

    def _start(self) -> BaseProcess:
        process = self._context.Process(
            target=_worker, args=(self._overrides, [self._sock]), name="moa-gateway-worker"
        )
        process.start()
        logger.info("worker %d started", process.pid)
        return process

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self._stopped_by is None:
            self._stopped_by = sig
            logger.info("received %s: draining %d workers", signal.Signals(sig).name, len(self._workers))
            # Our copy of the listening socket goes first: once each worker closes its own, new
            # connections are refused (a load balancer moves on) instead of waiting in the backlog.
            self._sock.close()
            self._send(signal.SIGTERM)
        elif sig == signal.SIGINT:
            self._send(signal.SIGINT)  # uvicorn's second SIGINT: stop now, without waiting for requests

    def _send(self, sig: int) -> None:
        for process in self._workers:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, sig)

    def _replace_dead(self) -> None:
        for i, process in enumerate(self._workers):
            if process.exitcode is None or self._stopped_by is not None:
                continue
            assert process.pid is not None
            fold_dead(self._metrics_dir, process.pid)  # its counters archived, its files gone
            if process.exitcode == STARTUP_FAILURE:
                logger.error("worker %d could not start: stopping", process.pid)
                self._failed = True
                return
            logger.warning("worker %d exited with %s: starting another", process.pid, process.exitcode)
            self._workers[i] = self._start()

    def _stop_all(self) -> None:
        """Every worker drains (SIGTERM, from `_on_signal`, or now after a failure) within its grace."""
        if self._failed:
            self._send(signal.SIGTERM)
        deadline = time.monotonic() + self._grace_s + _FORCE_AFTER_S
        for process in self._workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                logger.warning("worker %d did not stop in time: killing it", process.pid)
                process.kill()
                process.join()
            if process.pid is not None:
                fold_dead(self._metrics_dir, process.pid)
