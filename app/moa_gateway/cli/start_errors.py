"""Why a server did not start, in one line: what `moa-gateway serve` (and the `--workers` supervisor, for
a worker) prints before exiting non-zero, so a container that restarts or fails says why in its last line.
uvicorn reports a failed lifespan or bind in its log, not as an exception: a log handler notes it."""

from __future__ import annotations

import logging

STARTUP_FAILURE = 3  # uvicorn's exit status for a server that never served; ours too


def summary(exc: BaseException) -> str:
    """`Type: message`, on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ErrorNote(logging.Handler):
    """Notes the first exception logged at ERROR (the cause; uvicorn's `Application startup failed`
    comes after it), else the first error message."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.text: str | None = None
        self._from_exception = False

    def emit(self, record: logging.LogRecord) -> None:
        if self._from_exception:
            return
        lines = [line for line in record.getMessage().strip().splitlines() if line.strip()]
        if record.exc_info and record.exc_info[1] is not None:
            self.text, self._from_exception = summary(record.exc_info[1]), True
        elif lines and lines[0].startswith("Traceback"):
            # A traceback as text (Starlette sends a failed lifespan's so): its last line is the exception
            self.text, self._from_exception = " ".join(lines[-1].split()), True
        elif self.text is None and lines:
            self.text = lines[0]

    @classmethod
    def install(cls) -> ErrorNote:
        """A note on the root logger (after logging is configured: configuring replaces the handlers)."""
        note = cls()
        logging.getLogger().addHandler(note)
        return note
