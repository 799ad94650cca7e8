"""The one stream driver: every streamed answer (chat, completions, responses) goes through it, with
its API's encoder (wire/encoder.StreamEncoder). It owns what the APIs share: the commit to a 200 only
once something happened, keep-alives timed from the last bytes sent, time to first token (one
definition, `wire.encoder.carries_answer`), errors in-band after the first byte, the terminator, and
closing the run when the client leaves."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

from fastapi.responses import StreamingResponse

from moa_gateway.api.record import RequestRecord
from moa_gateway.api.streaming import Batches, ClientEvent, committed, event_stream
from moa_gateway.core.events import Event, FinalDelta, RunFailed, RunFinished
from moa_gateway.core.failures import Failure
from moa_gateway.core.types import MoaResult
from moa_gateway.runtime import Runtime
from moa_gateway.wire import live, sse
from moa_gateway.wire.chat import coalesced
from moa_gateway.wire.encoder import StreamEncoder, carries_answer
from moa_gateway.wire.errors import error_body, failure_body, failure_status

logger = logging.getLogger(__name__)

Finished = Callable[[MoaResult], Awaitable[None]]  # run before the end frames go out (a store's save)


async def stream_answer(
    runtime: Runtime,
    record: RequestRecord,
    events: AsyncGenerator[Event, None],
    encoder: StreamEncoder,
    finished: Finished | None = None,
    headers: Mapping[str, str] | None = None,
) -> StreamingResponse:
    """The run's `events` as `encoder`'s event stream, once it is worth a 200; raises the run's Failure
    if it failed before that (the caller answers with its status as JSON). `headers` go on the 200
    (the response cache's `x-moa-cache`)."""
    clock = sse.SendClock()
    batches: Batches = sse.with_keepalive(events, runtime.settings.sse_keepalive_s, clock, _first_token)
    if encoder.live:  # a client of live events also gets the inner events that came before the commit
        batches = live.in_order(batches)
        first, batches = await committed(batches, commit_on=live.COMMITTING, keep_inner=True)
    else:
        first, batches = await committed(batches, commit_on=ClientEvent)

    def first_token(elapsed_s: float) -> None:
        runtime.metrics.response_ttft.labels(record.model).observe(elapsed_s)

    response = event_stream(_frames(encoder, record, first, batches, first_token, finished), clock)
    if headers:
        response.headers.update(headers)
    return response


def _first_token(event: Event) -> bool:
    return isinstance(event, FinalDelta) and carries_answer(event.delta)


async def _frames(
    encoder: StreamEncoder,
    record: RequestRecord,
    first: list[Event] | sse.KeepAlive,
    batches: Batches,
    first_token: Callable[[float], None],
    finished: Finished | None,
) -> AsyncGenerator[bytes, None]:
    for frame in encoder.start():
        yield frame
    answered, live_events = False, encoder.live
    try:
        batch = first
        while True:
            if not isinstance(batch, list):
                yield sse.KEEPALIVE_COMMENT
            else:
                if live_events:
                    for frame in encoder.progress(batch):
                        yield frame
                # the deltas that arrived together go out in as few frames as keep their meaning
                for delta in coalesced([e.delta for e in batch if isinstance(e, FinalDelta)]):
                    frames = encoder.delta(delta)
                    for frame in frames:
                        yield frame
                    if not answered and frames and carries_answer(delta):
                        answered = True  # resumed after the write: the frames were sent
                        first_token(time.perf_counter() - record.started)
                for event in batch:
                    if isinstance(event, RunFailed):
                        raise event.failure
                    if isinstance(event, RunFinished):
                        record.result = event.result
                        frames = encoder.end(event.result)
                        if finished is not None:
                            await finished(event.result)
                        for frame in frames:
                            yield frame
            try:
                batch = await anext(batches)
            except StopAsyncIteration:
                break
    except Failure as exc:  # after the first byte, errors travel in-band
        logger.warning("stream %s failed after start: %s", encoder.id, exc.message)
        record.status = failure_status(exc)
        for frame in encoder.error(failure_body(exc)):
            yield frame
    except Exception:
        logger.exception("stream %s failed unexpectedly", encoder.id)
        record.status = 500
        for frame in encoder.error(error_body("The gateway failed unexpectedly", "server_error")):
            yield frame
    finally:
        await batches.aclose()  # the run's task ends here, however the stream ends (a client leaving)
    for frame in encoder.close():
        yield frame
