"""Where an eval gets its answers: the chat service in-process, or a running gateway over HTTP. Both
answer a model id (pipeline or alias) on a conversation, with what the answer cost and took."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from moa_gateway.core.caller import ANONYMOUS
from moa_gateway.core.failures import Failure
from moa_gateway.core.types import Message
from moa_gateway.service.chat import ChatService
from moa_gateway.wire.requests import ChatCompletionRequest


@dataclass(frozen=True)
class Answered:
    text: str
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cached: bool = False  # read from the answer cache: no call was made now


class AnswerError(Exception):
    """The model gave no answer; the message says why (never a key)."""


class Answerer(Protocol):
    async def answer(self, model: str, messages: list[Message]) -> Answered:
        """The model's answer to the conversation; raises AnswerError."""
        ...


class ServiceAnswerer:
    """In-process, through the chat service (its calls are counted in its runtime's metrics)."""

    def __init__(self, chat: ChatService) -> None:
        self._chat = chat

    async def answer(self, model: str, messages: list[Message]) -> Answered:
        request = ChatCompletionRequest.model_validate({"model": model, "messages": messages})
        started = time.perf_counter()
        try:
            result = await self._chat.complete(await self._chat.prepare(request, ANONYMOUS))
        except Failure as exc:
            raise AnswerError(exc.message) from None
        usage = result.usage
        return Answered(
            result.text,
            result.cost_usd,
            usage.prompt_tokens,
            usage.completion_tokens,
            time.perf_counter() - started,
        )


class HttpAnswerer:
    """Through a running gateway's `POST /v1/chat/completions` (cost from its `moa.cost_usd`)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def answer(self, model: str, messages: list[Message]) -> Answered:
        started = time.perf_counter()
        try:
            response = await self._client.post(
                "/v1/chat/completions", json={"model": model, "messages": messages}
            )
        except httpx.HTTPError as exc:
            raise AnswerError(f"model {model}: {type(exc).__name__}: {exc}") from None
        latency_s = time.perf_counter() - started
        body = _json(response)
        if response.status_code != 200:
            message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
            raise AnswerError(f"model {model}: HTTP {response.status_code}: {message or response.text[:200]}")
        try:
            text = body["choices"][0]["message"]["content"] or ""
            usage = body.get("usage") or {}
            cost = float(
                (body.get("moa") or {}).get("cost_usd") or response.headers.get("x-moa-cost-usd") or 0
            )
            return Answered(
                text,
                cost,
                int(usage.get("prompt_tokens", 0)),
                int(usage.get("completion_tokens", 0)),
                latency_s,
            )
        except (KeyError, IndexError, TypeError, ValueError):
            raise AnswerError(f"model {model}: the gateway's answer is not a chat completion") from None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
