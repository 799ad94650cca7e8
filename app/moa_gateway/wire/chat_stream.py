"""Chat Completions streaming: a run's events as `chat.completion.chunk` frames (role delta first, the
answer's deltas, finish and usage chunks, live events for `moa.stream_events`), then `data: [DONE]`."""

from __future__ import annotations

from typing import Any

from moa_gateway.core.events import Event
from moa_gateway.core.types import Delta, MoaResult
from moa_gateway.wire import live, sse
from moa_gateway.wire.chat import Completion, chunk_body, delta_body, usage_chunk_body


class ChatEncoder:
    """One chat completion's stream (`wire.encoder.StreamEncoder`)."""

    def __init__(
        self,
        completion: Completion,
        *,
        choices: int,
        include_usage: bool,
        include_proposals: bool,
        live_events: bool,
    ) -> None:
        self.id = completion.id
        self.live = live_events
        self._completion = completion
        self._choices = choices
        self._usage = include_usage
        self._proposals = include_proposals

    def start(self) -> list[bytes]:
        completion, usage = self._completion, self._usage
        role = {"role": "assistant", "content": ""}
        return [sse.event(chunk_body(completion, role, None, usage, index)) for index in range(self._choices)]

    def progress(self, events: list[Event]) -> list[bytes]:
        if self.live and (bodies := live.event_bodies(events)):
            return [sse.event(live.events_chunk_body(self._completion, bodies, self._usage))]
        return []

    def delta(self, delta: Delta) -> list[bytes]:
        body = chunk_body(self._completion, delta_body(delta), None, self._usage, delta.index, delta.logprobs)
        return [sse.event(body)]

    def end(self, result: MoaResult) -> list[bytes]:
        completion, usage = self._completion, self._usage
        frames = [
            sse.event(chunk_body(completion, {}, choice.finish_reason, usage, index))
            for index, choice in enumerate(result.answer.choices())
        ]
        if usage:
            frames.append(sse.event(usage_chunk_body(completion, result, self._proposals)))
        return frames

    def error(self, body: dict[str, Any]) -> list[bytes]:
        return [sse.event(body)]

    def close(self) -> list[bytes]:
        return [sse.DONE]
