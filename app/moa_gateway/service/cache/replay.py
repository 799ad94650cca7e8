"""A cached answer as the events of a run that made no call, so the routes frame a hit as they frame
any run: JSON collects it, a stream sends its choices' deltas (reasoning, text, tool calls) and its end."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from moa_gateway.core.events import Event, FinalDelta, RunFinished
from moa_gateway.core.types import Delta, MoaResult


async def replayed(result: MoaResult, stream: bool) -> AsyncGenerator[Event, None]:
    """Each choice whole, in one delta per kind, then the result (its `usage` chunk, if asked for)."""
    if stream:
        for index, choice in enumerate(result.answer.choices()):
            if choice.reasoning:
                yield FinalDelta(Delta(reasoning=choice.reasoning, index=index))
            if choice.text or choice.logprobs is not None:
                yield FinalDelta(Delta(text=choice.text, index=index, logprobs=choice.logprobs))
            if choice.tool_calls:
                # a streamed tool call carries its position in the message (`index`)
                calls = [{"index": i, **call} for i, call in enumerate(choice.tool_calls)]
                yield FinalDelta(Delta(tool_calls=calls, index=index))
    yield RunFinished(result)
