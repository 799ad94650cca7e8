"""What a streamed route waits for before it commits to its 200: something its client sees (an answer
delta, the end of the run, or its failure) or one keep-alive interval, so a fast failure keeps its status."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from app.core.events import Event, FinalDelta, RunFailed, RunFinished
from app.wire import sse

ClientEvent = (FinalDelta, RunFinished, RunFailed)  # the events an answer's client sees
Batches = AsyncGenerator[list[Event] | sse.KeepAlive, None]


async def committed(
    events: AsyncGenerator[Event, None], keepalive_s: float
) -> tuple[list[Event] | sse.KeepAlive, Batches]:
    """The first batch worth a 200 and the batches after it; raises the run's Failure if it failed
    before anything was sent."""
    batches = sse.with_keepalive(events, keepalive_s)
    first = await anext(batches)
    while isinstance(first, list) and not any(isinstance(e, ClientEvent) for e in first):
        first = await anext(batches)  # the run's inner events (layers, calls) are not the client's
    if isinstance(first, list):
        seen = next((e for e in first if isinstance(e, ClientEvent)), None)
        if isinstance(seen, RunFailed):
            await batches.aclose()
            raise seen.failure
    return first, batches
