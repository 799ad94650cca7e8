"""Reference injection follows the paper's reference code to the character."""

from __future__ import annotations

from typing import Any

import pytest

from moa_gateway.core.prompts import DEFAULT_AGGREGATOR_PROMPT, inject_references

CONVERSATION = [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And times 3?"},
]


def test_without_client_system_prompt_a_system_message_goes_first() -> None:
    out = inject_references(CONVERSATION, ["It is 12.", "Twelve, since 4*3=12."], DEFAULT_AGGREGATOR_PROMPT)

    assert out[0] == {
        "role": "system",
        "content": DEFAULT_AGGREGATOR_PROMPT + "\n1. It is 12.\n2. Twelve, since 4*3=12.",
    }
    assert out[1:] == CONVERSATION


def test_with_client_system_prompt_references_are_appended_after_a_blank_line() -> None:
    messages = [{"role": "system", "content": "Be brief."}, *CONVERSATION]

    out = inject_references(messages, ["12"], "PROMPT")

    assert out[0] == {"role": "system", "content": "Be brief.\n\nPROMPT\n1. 12"}
    assert out[1:] == CONVERSATION
    assert messages[0]["content"] == "Be brief.", "the caller's messages must not be modified"


def test_multiline_references_stay_whole() -> None:
    reference = "Line one.\nLine two with 3. a number"

    out = inject_references([{"role": "user", "content": "q"}], [reference, "second"], "P")

    assert out[0]["content"] == f"P\n1. {reference}\n2. second"


def test_a_string_is_refused_rather_than_numbered_character_by_character() -> None:
    with pytest.raises(TypeError):
        inject_references(CONVERSATION, "twelve", "P")  # type: ignore[arg-type]


def test_system_content_parts_get_one_more_text_part() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        *CONVERSATION,
    ]

    out = inject_references(messages, ["12"], "P")

    assert out[0]["content"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "\n\nP\n1. 12"},
    ]


def test_default_prompt_is_the_papers() -> None:
    assert DEFAULT_AGGREGATOR_PROMPT.startswith("You have been provided with a set of responses from various")
    assert DEFAULT_AGGREGATOR_PROMPT.endswith(
        "highest standards of accuracy and reliability.\n\nResponses from models:"
    )
