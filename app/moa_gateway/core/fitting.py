"""Context windows: a call whose input would not fit is not made, and references are shortened to fit
the model that reads them (the longest first, head and tail kept, with a visible marker)."""

from __future__ import annotations

from typing import Any

from moa_gateway.core.advice import cut_middle
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import ModelEntry, output_cap
from moa_gateway.core.prompts import PAPERS, Injection, final_answer, inject_references
from moa_gateway.core.tokens import count_prompt_tokens, count_tokens
from moa_gateway.core.types import Answer

REFERENCE_OVERHEAD = 8  # tokens of numbering and separators per reference, roughly


def requested_output(params: dict[str, Any]) -> int:
    """The output tokens the call asks for room for (0 when it sets no cap)."""
    return output_cap(params) or 0


def overflow(entry: ModelEntry, messages: list[dict[str, Any]], params: dict[str, Any]) -> str | None:
    """Why `messages` would not fit the model's window (with the output it is asked for), if so."""
    if entry.context_window is None:
        return None
    need = count_prompt_tokens(messages) + requested_output(params)
    if need <= entry.context_window:
        return None
    return f"model {entry.alias}: the input ({need} tokens with the output asked) is over its context window ({entry.context_window})"


def check_conversation(entry: ModelEntry, messages: list[dict[str, Any]], params: dict[str, Any]) -> None:
    """The conversation alone must fit the acting model: else the request fails, as OpenAI's would."""
    why = overflow(entry, messages, params)
    if why is not None:
        raise Failure(
            FailureKind.CONTEXT_LENGTH_EXCEEDED,
            f"This model's maximum context length is {entry.context_window} tokens, and the conversation "
            f"does not fit ({why})",
            param="messages",
        )


def fit_references(references: list[str], budget_tokens: int) -> list[str]:
    """`references` within `budget_tokens` in all: the longest cut first, to a common length, so short
    answers stay whole. With no room at all, each keeps a line's worth."""
    sizes = [count_tokens(r) + REFERENCE_OVERHEAD for r in references]
    if sum(sizes) <= budget_tokens:
        return references
    room = max(budget_tokens, 16 * len(references))
    cap = _water_level(sizes, room)
    fitted = []
    for text, size in zip(references, sizes, strict=True):
        if size <= cap:
            fitted.append(text)
        else:
            keep = max(1, cap - REFERENCE_OVERHEAD) / max(1, size - REFERENCE_OVERHEAD)
            fitted.append(cut_middle(text, max(40, int(len(text) * keep))))
    return fitted


def _water_level(sizes: list[int], room: int) -> int:
    """The largest per-reference size `c` with sum(min(size, c)) <= room."""
    low, high = 0, max(sizes)
    while low < high:
        middle = (low + high + 1) // 2
        if sum(min(size, middle) for size in sizes) <= room:
            low = middle
        else:
            high = middle - 1
    return low


def with_references(
    readers: list[ModelEntry],
    messages: list[dict[str, Any]],
    proposals: list[tuple[str, Answer]],
    prompt: str,
    params: dict[str, Any],
    how: Injection = PAPERS,
) -> list[dict[str, Any]]:
    """`messages` with the proposals' final answers injected as references (placed as `how` says),
    shortened to fit the smallest context window among the models that will read them."""
    if not proposals:
        return messages
    references = [final_answer(answer.text) for _, answer in proposals]
    windows = [entry.context_window for entry in readers if entry.context_window is not None]
    if windows:
        overhead = count_tokens(prompt) + count_tokens(how.note or "")
        room = min(windows) - count_prompt_tokens(messages) - overhead - requested_output(params)
        references = fit_references(references, room)
    return inject_references(messages, references, prompt, how)
