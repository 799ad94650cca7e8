"""`serve --workers auto`: one worker per CPU the process may use, within a container's CPU limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moa_gateway.cli import workers
from moa_gateway.settings import Settings

CPUS = len(os.sched_getaffinity(0))


@pytest.fixture
def cpu_max(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cpu.max"
    monkeypatch.setattr(workers, "_CGROUP_CPU_MAX", path)
    return path


def test_a_number_is_taken_as_it_is(cpu_max: Path) -> None:
    assert workers.worker_count(3) == 3


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("max 100000\n", CPUS),  # no limit
        ("50000 100000\n", 1),  # half a CPU: still one worker
        ("150000 100000\n", min(2, CPUS)),  # 1.5 CPUs: rounded up, as Kubernetes' downward API does
        ("6400000 100000\n", CPUS),  # a limit above the CPUs we may run on
    ],
)
def test_auto_is_one_worker_per_cpu_within_the_cgroup_limit(cpu_max: Path, limit: str, expected: int) -> None:
    cpu_max.write_text(limit)

    assert workers.worker_count("auto") == expected


def test_auto_without_a_cgroup_file_is_one_worker_per_cpu(cpu_max: Path) -> None:
    assert workers.worker_count("auto") == CPUS


def test_web_concurrency_and_moa_workers_set_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert Settings().workers == 3
    monkeypatch.setenv("MOA_WORKERS", "auto")  # ours wins over the platform's convention
    assert Settings().workers == "auto"
