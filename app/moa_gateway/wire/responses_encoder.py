"""Responses API streaming as a `wire.encoder.StreamEncoder`: the event sequence of
`responses_stream.ResponseStream`, each event framed with its name; no `[DONE]` (OpenAI sends none)."""

from __future__ import annotations

from typing import Any

from moa_gateway.core.events import Event
from moa_gateway.core.types import Delta, MoaResult
from moa_gateway.wire.responses_output import OutputItem, ResponseFrame
from moa_gateway.wire.responses_stream import ResponseStream, frame_event


class ResponsesEncoder:
    """One response's stream. After `end`, `response` is the final response object and `items` its
    output, which the caller stores."""

    live = False

    def __init__(self, frame: ResponseFrame) -> None:
        self.id = frame.id
        self._stream = ResponseStream(frame)
        self._response: dict[str, Any] | None = None

    @property
    def response(self) -> dict[str, Any]:
        """The final response object; set by `end`."""
        assert self._response is not None, "the stream has not ended"
        return self._response

    @property
    def items(self) -> list[OutputItem]:
        return self._stream.items

    def start(self) -> list[bytes]:
        return [frame_event(body) for body in self._stream.start()]

    def progress(self, events: list[Event]) -> list[bytes]:
        return []

    def delta(self, delta: Delta) -> list[bytes]:
        return [frame_event(body) for body in self._stream.delta(delta)]

    def end(self, result: MoaResult) -> list[bytes]:
        bodies = self._stream.finish(result)
        self._response = bodies[-1]["response"]
        return [frame_event(body) for body in bodies]

    def error(self, body: dict[str, Any]) -> list[bytes]:
        return [frame_event(event) for event in self._stream.fail(body["error"])]

    def close(self) -> list[bytes]:
        return []
