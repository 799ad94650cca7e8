"""Eval datasets: JSON lines, either `{"prompt": ...}` (optional `id` or `uid`, `category`, `reference`:
Arena-Hard v2's shape) or MT-Bench's question format (`question_id`, `category`, `turns`, optional
`reference`: a list, one per turn; Arena-Hard v0.1 writes each turn as `{"content": ...}`), whose turns
are answered one after another in one conversation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DatasetError(ValueError):
    """The dataset cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class EvalItem:
    id: str
    category: str
    turns: list[str]  # user turns, answered in order
    reference: str | None = None  # a reference answer (of the last turn), for the judge

    @property
    def question(self) -> str:
        """What the judge is shown as the question."""
        if len(self.turns) == 1:
            return self.turns[0]
        return "\n\n".join(f"Turn {i}: {turn}" for i, turn in enumerate(self.turns, 1))


def load_dataset(path: Path, limit: int | None = None) -> list[EvalItem]:
    """The items of a JSONL file, in order (the first `limit`); raises DatasetError, OSError."""
    items: list[EvalItem] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if limit is not None and len(items) >= limit:
                break
            try:
                item = _item(json.loads(line), len(items) + 1)
            except (json.JSONDecodeError, DatasetError, TypeError) as exc:
                raise DatasetError(f"{path}:{number}: {exc}") from None
            if item.id in seen:
                raise DatasetError(f"{path}:{number}: the id {item.id!r} appears twice")
            seen.add(item.id)
            items.append(item)
    if not items:
        raise DatasetError(f"{path}: no items")
    return items


def _item(data: Any, position: int) -> EvalItem:
    if not isinstance(data, dict):
        raise DatasetError("each line is a JSON object")
    if "turns" in data:  # MT-Bench
        turns = [t.get("content") if isinstance(t, dict) else t for t in data["turns"] or []]
        ident = data.get("question_id", data.get("id", position))
    else:
        turns = [data.get("prompt")]
        ident = data.get("id", data.get("uid", position))
    texts = [t for t in turns if isinstance(t, str) and t.strip()]
    if not texts or len(texts) != len(turns):
        raise DatasetError('an item needs "prompt" (a string) or "turns" (a list of strings)')
    reference = data.get("reference")
    if isinstance(reference, list):  # MT-Bench: one per turn; the judge sees the last turn's
        reference = reference[-1] if reference else None
    if reference is not None and not isinstance(reference, str):
        raise DatasetError('"reference" is a string (or a list of strings, one per turn)')
    category = data.get("category") or "uncategorised"
    return EvalItem(str(ident), str(category), texts, reference)
