"""Legacy Completions streaming: a run's events as `text_completion` chunks (the echoed prompt first,
the answer's text with legacy logprobs, finish and usage chunks), then `data: [DONE]`."""

from __future__ import annotations

from typing import Any

from moa_gateway.core.events import Event
from moa_gateway.core.types import Delta, MoaResult
from moa_gateway.wire import sse
from moa_gateway.wire.chat import Completion
from moa_gateway.wire.completions import CompletionRequest, chunk_body, delta_chunk, usage_chunk_body


class CompletionsEncoder:
    """One legacy completion's stream (`wire.encoder.StreamEncoder`). Reasoning and tool calls have no
    place in this API: their deltas make no frame."""

    live = False

    def __init__(self, completion: Completion, request: CompletionRequest, choices: int) -> None:
        self.id = completion.id
        self._completion = completion
        self._request = request
        self._offsets = [0] * choices  # text sent so far per choice, for legacy logprobs' text_offset

    def start(self) -> list[bytes]:
        if not self._request.echo:
            return []
        prompt = self._request.prompt_text
        frames = []
        for index in range(len(self._offsets)):
            self._offsets[index] = len(prompt)
            frames.append(sse.event(chunk_body(self._completion, prompt, index, None)))
        return frames

    def progress(self, events: list[Event]) -> list[bytes]:
        return []

    def delta(self, delta: Delta) -> list[bytes]:
        offsets = self._offsets
        known = delta.index < len(offsets)
        body = delta_chunk(self._completion, delta, offsets[delta.index] if known else 0)
        if body is None:
            return []
        if known:
            offsets[delta.index] += len(delta.text)
        return [sse.event(body)]

    def end(self, result: MoaResult) -> list[bytes]:
        completion, request = self._completion, self._request
        frames = [
            sse.event(chunk_body(completion, "", index, choice.finish_reason))
            for index, choice in enumerate(result.answer.choices())
        ]
        if request.stream_options is not None and request.stream_options.include_usage:
            frames.append(sse.event(usage_chunk_body(completion, result, request.moa.include_proposals)))
        return frames

    def error(self, body: dict[str, Any]) -> list[bytes]:
        return [sse.event(body)]

    def close(self) -> list[bytes]:
        return [sse.DONE]
