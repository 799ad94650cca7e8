"""The dependency-free token estimate: words and punctuation marks, one more per message for its role."""

from __future__ import annotations

from moa_gateway.core.tokens import count_prompt_tokens, count_tokens, message_text


def test_a_token_is_a_word_or_a_punctuation_mark() -> None:
    assert count_tokens("Why is the sky blue?") == 6
    assert count_tokens("  it's 4*3=12!  ") == 9  # it ' s 4 * 3 = 12 !
    assert count_tokens("") == 0


def test_a_messages_text_is_its_string_or_its_text_parts() -> None:
    parts = [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "x"}}, "stray"]

    assert message_text({"role": "user", "content": "Hi"}) == "Hi"
    assert message_text({"role": "user", "content": parts}) == "Look "
    assert message_text({"role": "assistant", "content": None}) == ""


def test_each_message_costs_its_role_and_its_text() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]

    assert count_prompt_tokens(messages) == (1 + 3) + (1 + 1)
    assert count_prompt_tokens([]) == 0
