"""`/healthz` probed while a request is served: whether one request freezes the gateway's event loop.

The probe runs in a process of its own: probing from a thread of the test's process would compete for
its interpreter lock with the in-process gateway and with the request being sent, and measure that."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Probes `{url}/healthz` every 50 ms until its stdin closes: prints "ready" once one probe answered,
# then how long each probe took (a probe unanswered within the limit counts as the limit).
_PROBE = """
import select, sys, time, urllib.request
url, limit = sys.argv[1] + "/healthz", float(sys.argv[2])
def probe():
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=limit) as answer:
            assert answer.status == 200
        return time.monotonic() - start
    except OSError:
        return limit
probe()
print("ready", flush=True)
while not select.select([sys.stdin], [], [], 0.05)[0]:
    print(probe(), flush=True)
print(probe(), flush=True)
"""


def health_while(url: str, action: Callable[[], T], limit_s: float = 1.0) -> tuple[T, list[float]]:
    """Runs `action` while another process probes `{url}/healthz` every 50 ms: its result, and how long
    each probe that overlapped it took (a probe unanswered within `limit_s` counts as `limit_s`)."""
    with subprocess.Popen(
        [sys.executable, "-c", _PROBE, url, str(limit_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as prober:
        assert prober.stdin is not None and prober.stdout is not None
        assert prober.stdout.readline().strip() == "ready", "the gateway did not answer /healthz"
        try:
            result = action()
        finally:
            prober.stdin.close()  # the prober makes one last probe, then ends
            took = [float(line) for line in prober.stdout.read().split()]
    return result, took
