"""Prometheus multiprocess mode for `serve --workers N`: each worker writes its metrics to files named by
its pid in one directory, and a scrape of any worker merges them all (prometheus_client's collector).

A dead worker's files would stay forever, read on every scrape (two per worker started: a crash loop or
months of restarts add up). The supervisor folds its counters, histograms and summaries into one archive
file per type that scrapes still read, so totals never go backwards, then deletes them; its live gauges
(in flight, connections, circuit states) are dropped, as prometheus_client's `mark_process_dead` does.
A lock file keeps a scrape from reading the directory halfway through a fold (where it would count the
dead worker twice, or fail on its file gone).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, PlatformCollector, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from moa_gateway.telemetry.process_metrics import WorkerProcesses

logger = logging.getLogger(__name__)

ARCHIVED = ("counter", "histogram", "summary")  # summed over processes, dead or alive
_LOCK = ".lock"  # not *.db: the collector reads only those


@contextmanager
def _locked(directory: Path, *, exclusive: bool) -> Iterator[None]:
    fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def render_group(directory: str) -> bytes:
    """Every process's metrics in `directory`, merged, in Prometheus' text format, with `python_info`
    and each live worker's `process_*` (process_metrics.py). Holds the lock for the read: a fold waits
    for it (milliseconds), and it for a fold."""
    group = CollectorRegistry()
    MultiProcessCollector(group, path=directory)  # type: ignore[no-untyped-call]
    PlatformCollector(registry=group)  # python_info: the same interpreter in every worker
    group.register(WorkerProcesses(directory))  # each live worker's process_*, labelled pid
    with _locked(Path(directory), exclusive=False):
        return generate_latest(group)


def fold_dead(directory: Path, pid: int) -> None:
    """Fold the files of the dead process `pid` into the archive and delete them (live gauges dropped).
    A file that cannot be read (a worker killed in the middle of a write) is kept, with a warning."""
    with _locked(directory, exclusive=True):
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        for kind in ARCHIVED:
            dead = directory / f"{kind}_{pid}.db"
            if not dead.exists():
                continue
            try:
                _archive(directory, kind, dead)
            except Exception as exc:  # a metrics file never stops the supervisor
                logger.warning("cannot archive the metrics of worker %d (%s): kept", pid, exc)
                continue
            dead.unlink()


def _archive(directory: Path, kind: str, dead: Path) -> None:
    """Write archive + `dead` as the new archive: staged under a name the collector ignores, then renamed."""
    archive = directory / f"{kind}_archive.db"
    sources = [str(f) for f in (archive, dead) if f.exists()]
    # accumulate=False: histogram buckets stay per bucket, as in the files (the scrape accumulates them)
    merged = MultiProcessCollector.merge(sources, accumulate=False)  # type: ignore[no-untyped-call]
    staged = directory / f"{kind}_archive.staged"
    staged.unlink(missing_ok=True)
    values = MmapedDict(str(staged))  # type: ignore[no-untyped-call]
    try:
        for metric in merged:
            for sample in metric.samples:
                labels = sample.labels
                key = mmap_key(
                    metric.name, sample.name, list(labels), list(labels.values()), metric.documentation
                )
                values.write_value(key, sample.value, sample.timestamp or 0.0)  # type: ignore[no-untyped-call]
    finally:
        values.close()  # type: ignore[no-untyped-call]
    os.replace(staged, archive)
