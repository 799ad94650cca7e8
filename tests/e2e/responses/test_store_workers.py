"""Stored responses under `moa-gateway serve --workers 2`, each request on a fresh connection (so either
worker may answer it): with the SQLite store every continuation finds its previous response, whichever
worker stored it; with the memory store only the worker that stored it can, and the start says so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.cli import free_port, wait_ready

CONFIG = """
providers:
  sim: {type: simulated, ttft_ms: 5, tokens_per_s: 0}
models:
  a: {provider: sim}
  b: {provider: sim}
  agg: {provider: sim}
pipelines:
  duo:
    layers: [{proposers: [a, b]}]
    aggregator: agg
"""
CONTINUATIONS = 8
MAX_CONTINUATIONS = 64  # fresh connections go to either worker, not in turn: a few may go to one


class Workers:
    """The supervisor process, with its output (JSON log lines of it and both workers) read as it comes."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:  # closed at the end of the output, however the process ends
            for line in self.process.stdout:
                if line.startswith("{"):
                    self.events.append(json.loads(line))

    def served_by(self, request_id: str) -> int:
        """The pid of the worker that answered the request (its log line follows its last byte)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for event in list(self.events):
                if event.get("event") == "request" and event["request_id"] == request_id:
                    return int(event["pid"])
            time.sleep(0.01)
        raise AssertionError(f"no request log line for {request_id}")

    def stop(self) -> list[dict[str, Any]]:
        """SIGTERM, wait for the exit, and every JSON log line."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        return self.events


@pytest.fixture
def serve_workers(tmp_path: Path) -> Iterator[Any]:
    started: list[Workers] = []

    def serve(store: str) -> Workers:
        config = tmp_path / "moa.yaml"
        config.write_text(CONFIG)
        port = free_port()
        env = {**os.environ, "MOA_LOG_FORMAT": "json", "MOA_RESPONSES_STORE": store}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        args = [
            sys.executable,
            "-m",
            "moa_gateway.cli",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ]
        process = subprocess.Popen(
            [*args, "--workers", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        url = f"http://127.0.0.1:{port}"
        workers = Workers(process, url)
        started.append(workers)
        wait_ready(url, process)
        return workers

    yield serve
    for workers in started:  # SIGTERM (a killed supervisor would leave its workers running)
        try:
            workers.stop()
        except subprocess.TimeoutExpired:
            workers.process.kill()
            workers.process.wait()


def continue_on_fresh_connections(workers: Workers) -> list[tuple[bool, bool]]:
    """One stored response, then continuations of it, each with a client (a connection) of its own:
    CONTINUATIONS, and more (up to MAX_CONTINUATIONS) until one reached the other worker. For each:
    whether it found the stored response, and whether the worker that stored it answered."""
    base_url = f"{workers.url}/v1"
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
        first = client.responses.create(
            model="duo", input="My name is Ada.", extra_headers={"x-request-id": "first"}
        )
    stored_on = workers.served_by("first")
    turns: list[tuple[bool, bool]] = []
    while len(turns) < CONTINUATIONS or all(same for _, same in turns):
        assert len(turns) < MAX_CONTINUATIONS, (
            "every continuation reached the worker that stored the response"
        )
        request_id = f"turn-{len(turns)}"
        with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
            try:
                client.responses.create(
                    model="duo",
                    previous_response_id=first.id,
                    input="What is my name?",
                    extra_headers={"x-request-id": request_id},
                )
                found = True
            except openai.NotFoundError:
                found = False
        turns.append((found, workers.served_by(request_id) == stored_on))
    return turns


def test_with_the_sqlite_store_every_continuation_finds_its_response_on_either_worker(
    serve_workers: Any, tmp_path: Path
) -> None:
    db = tmp_path / "shared" / "responses.db"
    workers = serve_workers(f"sqlite://{db}")
    turns = continue_on_fresh_connections(workers)
    events = workers.stop()

    found = [ok for ok, _ in turns]
    assert found == [True] * len(turns), f"{found.count(True)} of {len(turns)} continuations succeed"
    said = [e["pid"] for e in events if e.get("message") == f"responses store: sqlite {db}, shared by the workers of this host"]  # fmt: skip
    assert len(set(said)) == 2, "each worker names its store at start-up"


def test_with_the_memory_store_only_the_storing_worker_continues_and_the_start_warns(
    serve_workers: Any,
) -> None:
    workers = serve_workers("memory")
    turns = continue_on_fresh_connections(workers)
    events = workers.stop()

    assert [found for found, _ in turns] == [same for _, same in turns]
    warnings = [e["message"] for e in events if e["level"] == "warning"]
    assert any(
        "2 workers each keep their own stored /v1/responses" in m and "sqlite:///path/to/file.db" in m
        for m in warnings
    )
    assert any(e.get("message") == "responses store: memory, this worker only" for e in events)
