"""Read a streamed answer as its client does, frame by frame as the bytes arrive (a raw HTTP client:
the SDKs hide comments and timing)."""

from __future__ import annotations

import time
from typing import Any

import httpx


def frames_as_sent(url: str, body: dict[str, Any]) -> list[tuple[float, bytes]]:
    """Each SSE frame of the response (comments included) with when its last byte arrived, in seconds
    from just before the request was sent."""
    frames: list[tuple[float, bytes]] = []
    pending = b""
    started = time.monotonic()
    with httpx.stream("POST", url, json=body, timeout=10) as response:
        assert response.status_code == 200
        for data in response.iter_raw():
            pending += data
            *complete, pending = pending.split(b"\n\n")
            frames += [(time.monotonic() - started, frame) for frame in complete]
    return frames
