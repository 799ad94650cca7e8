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


@pytest.fixture
def node_of_32_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(32)))


@pytest.mark.parametrize(
    ("request_cpus", "expected"),
    [
        ("2", 2),  # the downward API, divisor 1: whole CPUs, already rounded up
        ("250m", 1),  # a quarter of a CPU: still one worker
        ("1.5", 2),
        ("6400", 32),  # a request above the CPUs we may run on
        ("0", 32),  # the downward API's value when the pod sets no request: nothing to go by
        ("lots", 32),
    ],
)
@pytest.mark.usefixtures("node_of_32_cores")
def test_auto_without_a_limit_follows_the_cpu_request(
    cpu_max: Path, monkeypatch: pytest.MonkeyPatch, request_cpus: str, expected: int
) -> None:
    cpu_max.write_text("max 100000\n")  # a pod with no CPU limit sees every core of its node
    monkeypatch.setenv("MOA_CPU_REQUEST", request_cpus)

    assert workers.worker_count("auto") == expected


@pytest.mark.usefixtures("node_of_32_cores")
def test_auto_with_a_limit_follows_the_limit_not_the_request(
    cpu_max: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpu_max.write_text("300000 100000\n")  # limit 3, request 1
    monkeypatch.setenv("MOA_CPU_REQUEST", "1")

    assert workers.worker_count("auto") == 3
