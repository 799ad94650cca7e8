"""Responses API streaming: a run's answer deltas as the documented event sequence, numbered.

response.created, response.in_progress
  per output item: response.output_item.added
    reasoning:  content_part.added, reasoning_text.delta..., reasoning_text.done, content_part.done
                (with `reasoning.summary`, each wrapped in reasoning_summary_part.added, then
                reasoning_summary_text.delta before each reasoning_text.delta, .done and part.done)
    message:    content_part.added, output_text.delta..., output_text.done, content_part.done
    call:       function_call_arguments.delta..., function_call_arguments.done
  response.output_item.done
response.completed | response.incomplete (cut by length) | response.failed
"""

from __future__ import annotations

from typing import Any

import orjson

from moa_gateway.core.types import Delta, MoaResult
from moa_gateway.wire.responses_output import (
    OutputItem,
    ResponseFrame,
    final_status,
    item_body,
    item_id,
    new_id,
    output_items,
    response_body,
    summary_part,
    text_part,
)


def frame_event(body: dict[str, Any]) -> bytes:
    """One event as SSE, named by its type as OpenAI names them."""
    return b"event: " + str(body["type"]).encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


class ResponseStream:
    """Turns deltas into events; `items` is the output so far, which the final response repeats."""

    def __init__(self, frame: ResponseFrame) -> None:
        self.frame = frame
        self.items: list[OutputItem] = []
        self._sequence = 0
        self._open: OutputItem | None = None  # the reasoning or message item text goes to
        self._calls: dict[int, OutputItem] = {}  # function call items by the chat tool-call index
        self._last_call: OutputItem | None = None  # calls stream one after another: the one still open
        self._closed: set[str] = set()
        # Each item's place in the output, by id: every event names it, and `items.index` made 10k
        # streamed tool calls cost 30 s of CPU (a scan, comparing dataclasses, per event).
        self._output_index: dict[str, int] = {}

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        body = {"type": kind, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        return body

    def _at(self, item: OutputItem) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": self._output_index[item.id]}

    def start(self) -> list[dict[str, Any]]:
        response = response_body(self.frame, "in_progress", [])
        return [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=response),
        ]

    def delta(self, delta: Delta) -> list[dict[str, Any]]:
        if delta.index != 0:  # the Responses API has one answer (no `n`)
            return []
        events: list[dict[str, Any]] = []
        if delta.reasoning:
            item = self._text_item("reasoning", events)
            item.text += delta.reasoning
            if self.frame.summary:
                events.append(
                    self._summary_event("response.reasoning_summary_text.delta", item, delta.reasoning)
                )
            events.append(
                self._event(
                    "response.reasoning_text.delta", **self._at(item), content_index=0, delta=delta.reasoning
                )
            )
        if delta.text:
            item = self._text_item("message", events)
            item.text += delta.text
            logprobs = delta.logprobs.get("content") if isinstance(delta.logprobs, dict) else None
            item.logprobs += logprobs or []
            events.append(
                self._event(
                    "response.output_text.delta",
                    **self._at(item),
                    content_index=0,
                    delta=delta.text,
                    logprobs=logprobs or [],
                )
            )
        for fragment in delta.tool_calls or []:
            self._call_fragment(fragment, events)
        return events

    def _text_item(self, kind: str, events: list[dict[str, Any]]) -> OutputItem:
        if self._open is not None and self._open.kind == kind:
            return self._open
        self._close_open(events)
        item = (
            OutputItem("reasoning", item_id("rs", self.frame.id))
            if kind == "reasoning"
            else OutputItem("message", item_id("msg", self.frame.id))
        )
        self._add(item, events)
        if kind == "reasoning" and self.frame.summary:
            events.append(self._summary_event("response.reasoning_summary_part.added", item))
        part = {"type": "reasoning_text", "text": ""} if kind == "reasoning" else text_part("")
        events.append(
            self._event("response.content_part.added", **self._at(item), content_index=0, part=part)
        )
        self._open = item
        return item

    def _call_fragment(self, fragment: dict[str, Any], events: list[dict[str, Any]]) -> None:
        index = fragment.get("index", 0)
        function = fragment.get("function") or {}
        item = self._calls.get(index)
        if item is None:
            self._close_open(events)
            if self._last_call is not None:  # calls stream one after another
                self._close(self._last_call, events)
            call_id = fragment.get("id") or new_id("call")
            name = function.get("name") or ""
            space = self.frame.namespaces.get(name)
            item = OutputItem(
                "function_call", item_id("fc", self.frame.id), name=name, call_id=call_id, namespace=space
            )
            self._calls[index] = self._last_call = item
            self._add(item, events)
        elif function.get("name") and not item.name:
            item.name = function["name"]
            item.namespace = self.frame.namespaces.get(item.name)
        if arguments := function.get("arguments"):
            item.text += arguments
            events.append(
                self._event("response.function_call_arguments.delta", **self._at(item), delta=arguments)
            )

    def _add(self, item: OutputItem, events: list[dict[str, Any]]) -> None:
        self._output_index[item.id] = len(self.items)
        self.items.append(item)
        events.append(
            self._event(
                "response.output_item.added",
                output_index=len(self.items) - 1,
                item=item_body(item, "in_progress", self.frame.summary),
            )
        )

    def _close_open(self, events: list[dict[str, Any]]) -> None:
        if self._open is not None:
            self._close(self._open, events)
            self._open = None

    def _close(self, item: OutputItem, events: list[dict[str, Any]]) -> None:
        if item.id in self._closed:
            return
        self._closed.add(item.id)
        at = self._at(item)
        if item.kind == "reasoning":
            if self.frame.summary:
                events.append(self._summary_event("response.reasoning_summary_text.done", item, item.text))
                events.append(self._summary_event("response.reasoning_summary_part.done", item, item.text))
            part = {"type": "reasoning_text", "text": item.text}
            events.append(self._event("response.reasoning_text.done", **at, content_index=0, text=item.text))
            events.append(self._event("response.content_part.done", **at, content_index=0, part=part))
        elif item.kind == "message":
            events.append(
                self._event(
                    "response.output_text.done", **at, content_index=0, text=item.text, logprobs=item.logprobs
                )
            )
            part = text_part(item.text, item.logprobs)
            events.append(self._event("response.content_part.done", **at, content_index=0, part=part))
        else:
            events.append(
                self._event(
                    "response.function_call_arguments.done", **at, name=item.name, arguments=item.text
                )
            )
        events.append(
            self._event(
                "response.output_item.done",
                output_index=at["output_index"],
                item=item_body(item, "completed", self.frame.summary),
            )
        )

    def finish(self, result: MoaResult) -> list[dict[str, Any]]:
        """Close what is open, send whatever the answer has that never streamed (an answer that came
        whole), then the final response."""
        events: list[dict[str, Any]] = []
        self._close_open(events)
        for item in self._calls.values():
            self._close(item, events)
        if not self.items:
            for item in output_items(result.answer, self.frame):
                self._replay(item, events)
        status = final_status(result.answer)
        response = response_body(self.frame, status, self.items, result)
        events.append(self._event(f"response.{status}", response=response))
        return events

    def _replay(self, item: OutputItem, events: list[dict[str, Any]]) -> None:
        self._add(item, events)
        at = self._at(item)
        if item.kind == "function_call":
            events.append(self._event("response.function_call_arguments.delta", **at, delta=item.text))
        else:
            if item.kind == "reasoning" and self.frame.summary:
                events.append(self._summary_event("response.reasoning_summary_part.added", item))
                events.append(self._summary_event("response.reasoning_summary_text.delta", item, item.text))
            part = {"type": "reasoning_text", "text": ""} if item.kind == "reasoning" else text_part("")
            events.append(self._event("response.content_part.added", **at, content_index=0, part=part))
            kind = "reasoning_text" if item.kind == "reasoning" else "output_text"
            extra = {} if item.kind == "reasoning" else {"logprobs": item.logprobs}
            events.append(
                self._event(f"response.{kind}.delta", **at, content_index=0, delta=item.text, **extra)
            )
        self._close(item, events)

    def _summary_event(self, kind: str, item: OutputItem, text: str = "") -> dict[str, Any]:
        """A reasoning summary event: one summary part per reasoning item, the reasoning itself."""
        if kind.endswith(".delta"):
            fields: dict[str, Any] = {"delta": text}
        elif kind.endswith("text.done"):
            fields = {"text": text}
        else:
            fields = {"part": summary_part(text)}
        return self._event(kind, **self._at(item), summary_index=0, **fields)

    def fail(self, error: dict[str, Any]) -> list[dict[str, Any]]:
        """The run failed after the stream began: `response.failed`, with the error."""
        failed = {"code": error.get("code") or "server_error", "message": error.get("message", "")}
        return [
            self._event(
                "response.failed", response=response_body(self.frame, "failed", self.items, error=failed)
            )
        ]
