"""`/healthz` probed while a request is served: whether one request freezes the gateway's event loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


def health_while(url: str, action: Callable[[], T], limit_s: float = 1.0) -> tuple[T, list[float]]:
    """Runs `action` in a thread and probes `{url}/healthz` every 50 ms until it ends: its result, and
    how long each probe took (a probe unanswered within `limit_s` counts as `limit_s`)."""
    done: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(action())
        except BaseException as exc:  # re-raised in the test's thread below
            failed.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    took: list[float] = []
    with httpx.Client(timeout=limit_s) as client:
        while worker.is_alive():
            start = time.monotonic()
            try:
                assert client.get(f"{url}/healthz").status_code == 200
                took.append(time.monotonic() - start)
            except httpx.TimeoutException:
                took.append(limit_s)
            time.sleep(0.05)
    worker.join()
    if failed:
        raise failed[0]
    return done[0], took
