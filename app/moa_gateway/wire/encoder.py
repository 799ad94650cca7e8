"""What one API's streamed answer is made of (`StreamEncoder`: chat chunks, completions chunks, Responses
events), and the one definition of an answer's first token. The stream driver (api/stream_driver.py)
owns the rest: the commit, keep-alives, time to first token, errors in-band, the terminator."""

from __future__ import annotations

from typing import Any, Protocol

from moa_gateway.core.events import Event
from moa_gateway.core.types import Delta, MoaResult


class StreamEncoder(Protocol):
    """Turns a run's events into one API's SSE frames, in order. Pure: no I/O, no clock."""

    id: str  # names the stream in logs
    live: bool  # its client also sees the run's inner events (layers, calls): see `progress`

    def start(self) -> list[bytes]:
        """The frames that open the stream, once it has committed to its 200."""
        ...

    def progress(self, events: list[Event]) -> list[bytes]:
        """The run's inner events of one batch, for a `live` client (empty otherwise); sent before the
        batch's answer deltas."""
        ...

    def delta(self, delta: Delta) -> list[bytes]:
        """A piece of the answer (empty if this API has no place for it)."""
        ...

    def end(self, result: MoaResult) -> list[bytes]:
        """The run finished: finish reasons, usage, the final object."""
        ...

    def error(self, body: dict[str, Any]) -> list[bytes]:
        """The run failed after the stream began: `body` is the error in OpenAI's shape (`{"error":...}`)."""
        ...

    def close(self) -> list[bytes]:
        """The stream's last frames, after the end or the error (`data: [DONE]`, or none)."""
        ...


def carries_answer(delta: Delta) -> bool:
    """Whether a delta is answer content: text, reasoning or a tool call. Time to first token ends when
    the first frame made of such a delta was sent to the client (a role delta, an echoed prompt, a
    keep-alive or a live event does not count; nor does a delta its API drops, as completions drops
    reasoning)."""
    return bool(delta.text or delta.reasoning or delta.tool_calls)
