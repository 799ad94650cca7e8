"""Structured outputs around any finalizer: a final answer that does not fit the requested schema is
asked for once more, told what was wrong (JSON answers only: a stream has already gone out)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from moa_gateway.core.events import Event
from moa_gateway.core.final.base import Finalizer, FinalOutcome, Finishing, Proposals
from moa_gateway.core.types import Answer, Message, RunInput


def schema_checked(finalizer: Finalizer) -> Finalizer:
    """`finalizer`, then the schema check, and one corrected attempt when it fails."""

    async def checked(
        finishing: Finishing, proposals: Proposals, outcome: FinalOutcome
    ) -> AsyncGenerator[Event, None]:
        async for event in finalizer(finishing, proposals, outcome):
            yield event
        final = outcome.final
        problem = None if final is None else await _problem(finishing.run, final.answer)
        if problem is not None and final is not None and not finishing.stream:
            retry = FinalOutcome()
            messages = _corrected(outcome.messages, final.answer, problem)
            async for event in finishing.call(messages, finishing.run.params, retry):
                yield event
            outcome.slots += retry.slots
            if retry.final is not None and retry.final.answer is not None:
                outcome.final = retry.final
                problem = await _problem(finishing.run, retry.final.answer)
        outcome.problem = problem

    return checked


async def _problem(run: RunInput, answer: Answer | None) -> str | None:
    """What is wrong with a final text answer (it does not fit the requested schema), if anything."""
    if run.check_answer is None or answer is None or answer.tool_calls:
        return None
    return await run.check_answer(answer.text)


def _corrected(messages: list[Message], answer: Answer | None, problem: str) -> list[Message]:
    """The final call's messages, its answer, and a request to answer again within the schema."""
    said = answer.text if answer is not None else ""
    return [
        *messages,
        {"role": "assistant", "content": said},
        {
            "role": "user",
            "content": "That answer does not match the required JSON schema: "
            f"{problem}\nAnswer again with only the JSON document, matching the schema.",
        },
    ]
