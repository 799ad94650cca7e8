"""What proposers see of an agent conversation, and what references carry."""

from __future__ import annotations

from typing import Any

from moa_gateway.core.advice import ADVISE_INSTRUCTION, advisory_messages, cut_middle, text_only
from moa_gateway.core.prompts import final_answer, inject_references

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a travel agent."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "18C, rain"},
]


def test_tool_calls_and_results_become_text_and_the_original_is_untouched() -> None:
    view = advisory_messages(CONVERSATION, tools_offered=True, result_chars=1000)

    assert [m["role"] for m in view] == ["system", "user", "assistant", "user"]
    assert view[0]["content"] == "You are a travel agent.\n\n" + ADVISE_INSTRUCTION
    assert view[2] == {
        "role": "assistant",
        "content": '[Called tool get_weather (id call_1) with arguments: {"city":"Paris"}]',
    }
    assert view[3] == {"role": "user", "content": "[Result of tool call call_1]\n18C, rain"}
    assert CONVERSATION[3]["role"] == "tool" and "tool_calls" in CONVERSATION[2]


def test_without_tools_on_offer_there_is_no_instruction_and_plain_turns_pass_as_they_are() -> None:
    plain = [{"role": "user", "content": "hi"}]
    assert advisory_messages(plain, tools_offered=False, result_chars=100) == plain


def test_a_long_result_keeps_its_head_and_tail() -> None:
    text = "HEAD" + "x" * 10_000 + "TAIL"
    cut = cut_middle(text, 200)

    assert cut.startswith("HEAD") and cut.endswith("TAIL")
    assert "[… 9808 characters omitted …]" in cut
    assert cut_middle("short", 200) == "short"


def test_text_only_replaces_media_parts() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                {"type": "input_audio", "input_audio": {"data": "...", "format": "wav"}},
            ],
        }
    ]
    assert text_only(messages)[0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "text", "text": "[image url omitted: this model reads text only]"},
        {"type": "text", "text": "[input audio omitted: this model reads text only]"},
    ]


def test_thinking_blocks_are_stripped_from_references() -> None:
    assert final_answer("<think>step 1, step 2</think>\nParis is rainy.") == "Paris is rainy."
    assert final_answer("<THINKING>a</THINKING>B <think>unclosed to the end") == "B"
    assert final_answer("1 < 2, plainly") == "1 < 2, plainly"


def test_references_go_into_the_first_developer_message() -> None:
    messages = [{"role": "user", "content": "q"}, {"role": "developer", "content": "Be brief."}]
    injected = inject_references(messages, ["A"], "Refs:")

    assert injected[0] == messages[0]
    assert injected[1] == {"role": "developer", "content": "Be brief.\n\nRefs:\n1. A"}
