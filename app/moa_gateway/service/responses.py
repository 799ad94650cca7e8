"""The Responses API as a use case on top of chat completion: a request's history (from a stored
response, for `previous_response_id`) and input become one chat run; a finished response is stored for
retrieval and continuation by the same caller. No HTTP here, and no second MoA run: the chat service
runs it."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal

from moa_gateway.core.caller import Caller
from moa_gateway.core.events import Event
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import quoted
from moa_gateway.core.types import Message, MoaResult
from moa_gateway.service.chat import AfterResponse, ChatRun, ChatService
from moa_gateway.service.items import with_referenced_items
from moa_gateway.service.response_store import ResponseStore, StoredResponse
from moa_gateway.wire.responses import (
    ResponsesRequest,
    chat_request,
    input_messages,
    instructions_message,
    without_hosted_tools,
)
from moa_gateway.wire.responses_output import OutputItem, ResponseFrame, assistant_turn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResponsesRun:
    chat: ChatRun
    frame: ResponseFrame
    conversation: list[Message]  # history and input, without instructions: what a continuation replays
    store: bool
    caller: Caller  # who asked: the stored response is theirs alone


class ResponsesService:
    def __init__(
        self, chat: ChatService, store: ResponseStore, hosted_tools: Literal["drop", "reject"] = "drop"
    ) -> None:
        self._chat = chat
        self._store = store
        self._hosted_tools = hosted_tools  # MOA_HOSTED_TOOLS

    async def prepare(
        self, request: ResponsesRequest, caller: Caller, after_response: AfterResponse | None = None
    ) -> ResponsesRun:
        """Raises Failure: 400 for a bad request, 404 for an unknown model or a previous response that
        `caller` did not store. `after_response` as for ChatService.prepare."""
        self._chat.check_tool_count(len(request.tools or ()))  # before translating them
        history: list[Message] = []
        if request.previous_response_id is not None:
            previous = await self._store.get(caller, request.previous_response_id)
            if previous is None:
                raise not_found(request.previous_response_id, param="previous_response_id")
            history = previous.conversation
        # Items resolve from what this caller stored, as previous_response_id does.
        request = await with_referenced_items(
            request, lambda response_id: self._store.get(caller, response_id)
        )
        dropped: list[str] = []
        if self._hosted_tools == "drop":  # else the wire's 400 names the first hosted tool
            request, dropped = without_hosted_tools(request)
        conversation = history + input_messages(request)
        messages = instructions_message(request) + conversation
        run = await self._chat.prepare(chat_request(request, messages), caller, after_response)
        frame = ResponseFrame.of(request, tuple(dropped))
        if dropped:
            logger.info(
                "response %s: hosted tools dropped (MOA_HOSTED_TOOLS=drop): %s", frame.id, ", ".join(dropped)
            )
        return ResponsesRun(run, frame, conversation, request.stores, caller)

    def events(self, run: ResponsesRun) -> AsyncGenerator[Event, None]:
        return self._chat.events(run.chat)

    async def complete(self, run: ResponsesRun) -> MoaResult:
        return await self._chat.complete(run.chat)

    async def save(self, run: ResponsesRun, response: dict[str, object], output: list[OutputItem]) -> None:
        """Keep a finished response (if the client asked to store it) with the conversation so far. A
        store that fails loses the entry, not the answer: the client has it already or is about to."""
        if not run.store:
            return
        conversation = [*run.conversation, assistant_turn(output)]
        entry = StoredResponse(run.frame.id, run.caller, dict(response), conversation)
        try:
            await self._store.put(entry)
        except Failure as exc:
            logger.warning("response %s not stored: %s", run.frame.id, exc.message)

    async def retrieve(self, caller: Caller, response_id: str) -> dict[str, object]:
        """The stored response, if `caller` stored it; else 404, as for an id never stored."""
        stored = await self._store.get(caller, response_id)
        if stored is None:
            raise not_found(response_id)
        return stored.response

    async def delete(self, caller: Caller, response_id: str) -> None:
        if not await self._store.delete(caller, response_id):
            raise not_found(response_id)


def not_found(response_id: str, param: str | None = None) -> Failure:
    """OpenAI's 404 for a response id that names nothing stored (never stored, deleted or evicted)."""
    return Failure(FailureKind.NOT_FOUND, f"Response with id {quoted(response_id)} not found.", param=param)
