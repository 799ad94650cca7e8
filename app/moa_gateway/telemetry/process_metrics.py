"""What every Prometheus exporter is expected to say about itself: `process_*` (CPU, memory, file
descriptors, start time: prometheus_client's ProcessCollector), `python_info` (its PlatformCollector),
and the version running, for `moa_build_info`.

Under `serve --workers N` a scrape is answered by one worker from the files every worker writes
(multiprocess_metrics.py), which hold no process metrics. There the answering worker reads each live
worker's /proc entry instead and exports its `process_*` labelled `pid`, one series per worker as for
`moa_circuit_state`: sum them for the group's memory, `rate()` each for CPU. The supervisor itself
(a few MB, no requests) is not included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# A live worker's own gauge files (`gauge_livesum_<pid>.db`...): the supervisor deletes them when the
# worker dies (mark_process_dead), and every worker writes one at start (moa_build_info, in flight).
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def package_version() -> str:
    """The installed moa-gateway's version (its package metadata), `unknown` when run from a bare tree."""
    try:
        return version("moa-gateway")
    except PackageNotFoundError:
        return "unknown"


def register_process_collectors(registry: CollectorRegistry) -> None:
    """This process's `process_*` and `python_info` on `registry` (a single process's /metrics)."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


class WorkerProcesses(Collector):
    """`process_*` of every live worker of a `--workers N` group, labelled `pid`, read from /proc."""

    def __init__(self, directory: str) -> None:
        self._directory = Path(directory)

    def live_pids(self) -> list[int]:
        pids = {int(m[1]) for f in self._directory.iterdir() if (m := _LIVE_GAUGE_FILE.match(f.name))}
        return sorted(pids)

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for pid in self.live_pids():
            # A worker gone since its files were listed yields nothing (ProcessCollector skips it).
            for family in ProcessCollector(pid=_constant(pid), registry=None).collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        return list(families.values())
