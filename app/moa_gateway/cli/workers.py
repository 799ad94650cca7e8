"""`moa-gateway serve --workers N`: N worker processes serving one listening socket, supervised.

The supervisor binds the socket, starts the workers (spawned: each imports the app afresh, after the
Prometheus multiprocess directory is set, so every metric is written to files there that `/metrics` on
any worker reads back as one process group), starts a worker again if one dies after serving, stops if
one never served (app/moa_gateway/cli/supervisor.py), and on SIGTERM or SIGINT sends each worker SIGTERM,
which drains it as it would a single process; a second SIGINT forces them.
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
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

from moa_gateway.cli.start_errors import ErrorNote, summary
from moa_gateway.cli.supervisor import ERROR, SERVING, Supervisor
from moa_gateway.settings import Settings

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CPU_REQUEST_ENV = "MOA_CPU_REQUEST"  # the container's CPU request (Kubernetes: downward API, requests.cpu)


def worker_count(setting: int | Literal["auto"]) -> int:
    """Workers to start: as set, or for `auto` one per CPU this process may run on, within a cgroup
    (container) CPU limit rounded up; with no limit, within the CPU request MOA_CPU_REQUEST gives, rounded
    up (a pod without a CPU limit sees every core of its node: 32 workers in a 1 GiB pod)."""
    if setting != "auto":
        return setting
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = _CGROUP_CPU_MAX.read_text().split()
    except (OSError, ValueError):
        quota, period = "max", ""
    if quota != "max":
        return max(1, min(cpus, math.ceil(int(quota) / int(period))))
    return min(cpus, _requested_cpus() or cpus)


def _requested_cpus() -> int | None:
    """MOA_CPU_REQUEST as whole CPUs, rounded up: `2`, `1.5` or `1500m`; None when unset, zero (the
    downward API's value when no request is set) or not a number."""
    value = os.environ.get(CPU_REQUEST_ENV, "").strip()
    try:
        cpus = float(value[:-1]) / 1000 if value.endswith("m") else float(value)
    except ValueError:
        return None
    return math.ceil(cpus) if cpus > 0 else None


def serve_workers(overrides: dict[str, Any], settings: Settings, workers: int) -> int:
    """Serve with `workers` processes until a signal, the exit status then a single process's; or until
    the supervisor gives up (app/moa_gateway/cli/supervisor.py), with its status."""
    metrics_dir, owned = _metrics_dir()
    try:
        try:
            sock = _listen(settings.host, settings.port)
        except OSError as exc:
            logger.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
            return 1
        context = multiprocessing.get_context("spawn")
        supervisor = Supervisor(
            _worker, overrides, sock, workers, settings.shutdown_grace_s, metrics_dir, context
        )
        try:
            failure = supervisor.run()
        finally:
            sock.close()
    finally:
        if owned:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    stopped_by = supervisor.stopped_by
    if failure is not None or stopped_by is None:
        return failure or 1
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


def _worker(overrides: dict[str, Any], sockets: list[socket.socket], report: Connection) -> None:
    """A worker process: the same settings and config as the supervisor, served on its socket. It tells
    the supervisor on `report` once it serves, and why it stops if an error stops it."""
    note: ErrorNote | None = None
    cause: str | None = None
    serving = False

    def on_serving() -> None:
        nonlocal serving
        serving = True
        if note is not None:
            logging.getLogger().removeHandler(note)  # later errors are a request's, not a start's
        report.send((SERVING, None))

    try:
        from moa_gateway.cli.serve import serve_app
        from moa_gateway.config import load_config
        from moa_gateway.telemetry.logs import configure_logging

        settings = Settings(**overrides)
        configure_logging(settings.log_level, settings.log_format, settings.max_log_value_chars)
        note = ErrorNote.install()
        config = load_config(settings.config)  # it may have changed since the supervisor read it
        serve_app(settings, config, sockets, on_serving=on_serving)
    except Exception as exc:
        cause = summary(exc)
        if serving:
            logger.exception("worker %d failed", os.getpid())
        else:  # the supervisor's line says it; the traceback at debug level
            logger.debug("worker %d could not start", os.getpid(), exc_info=True)
        raise SystemExit(1) from None
    finally:
        said = cause or (note.text if note is not None and not serving else None)
        if said:
            report.send((ERROR, said))
