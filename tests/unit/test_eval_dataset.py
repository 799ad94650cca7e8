"""Eval datasets: our prompt lines, MT-Bench questions, Arena-Hard's two shapes, and errors by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from moa_gateway.eval.dataset import DatasetError, EvalItem, load_dataset

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_supported_shape_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '{"id": "a", "category": "maths", "prompt": "1+1?", "reference": "2"}',
        '{"prompt": "Hello?"}',
        "",
        '{"question_id": 81, "category": "writing", "turns": ["Title?", "Subtitle?"], "reference": ["x", "y"]}',
        '{"question_id": "ah", "category": "hard", "turns": [{"content": "Use ABC notation."}]}',  # Arena-Hard v0.1
        '{"uid": "u1", "category": "creative", "prompt": "A poem."}',  # Arena-Hard v2
    )

    items = load_dataset(path)

    assert items == [
        EvalItem("a", "maths", ["1+1?"], "2"),
        EvalItem("2", "uncategorised", ["Hello?"]),
        EvalItem("81", "writing", ["Title?", "Subtitle?"], "y"),
        EvalItem("ah", "hard", ["Use ABC notation."]),
        EvalItem("u1", "creative", ["A poem."]),
    ]
    assert items[2].question == "Turn 1: Title?\n\nTurn 2: Subtitle?"
    assert [i.id for i in load_dataset(path, limit=2)] == ["a", "2"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "data.jsonl:2:"),
        ('{"prompt": ""}', 'needs "prompt"'),
        ('{"turns": []}', 'needs "prompt"'),
        ('{"id": "a", "prompt": "again"}', "appears twice"),
        ('{"prompt": "x", "reference": 3}', '"reference" is a string'),
    ],
)
def test_a_bad_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        load_dataset(write(tmp_path, '{"id": "a", "prompt": "fine"}', line))


def test_the_shipped_sample_has_twenty_prompts_over_four_categories() -> None:
    items = load_dataset(ROOT / "config" / "eval" / "sample.jsonl")

    assert len(items) == 20
    assert {i.category for i in items} == {"writing", "reasoning", "coding", "knowledge"}
    assert any(len(i.turns) > 1 for i in items) and any(i.reference for i in items)
