"""A progress bar on stderr: redrawn in place on a terminal, a line per tenth of the run otherwise (CI logs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 30


class Progress:
    def __init__(self, total: int, label: str = "items", stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self._label = label
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._started = time.monotonic()
        self._last_tenth = -1

    def advance(self, failed: bool = False) -> None:
        self.done += 1
        self.failed += failed
        tenth = self.done * 10 // max(self.total, 1)
        if self._tty:
            self._stream.write("\r" + self._line())
            if self.done == self.total:
                self._stream.write("\n")
        elif tenth != self._last_tenth or self.done == self.total:
            self._stream.write(self._line() + "\n")
        self._last_tenth = tenth
        self._stream.flush()

    def _line(self) -> str:
        share = self.done / max(self.total, 1)
        filled = round(share * _WIDTH)
        elapsed = time.monotonic() - self._started
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"[{'#' * filled}{'.' * (_WIDTH - filled)}] {self.done}/{self.total} {self._label}{failed} "
            f"{elapsed:.0f}s elapsed, ~{eta:.0f}s left"
        )
