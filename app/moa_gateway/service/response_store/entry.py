"""What every response store holds and obeys: the stored entry, the limits, the store protocol, and
the store that keeps nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from moa_gateway.core.caller import Caller
from moa_gateway.core.types import Message

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredResponse:
    """A response as returned to its client, and the conversation a continuation of it starts from:
    its history, its input and its output as chat messages (instructions excluded, as OpenAI does);
    stored for `caller`, the only one who may read, continue or delete it."""

    id: str
    caller: Caller
    response: dict[str, Any]
    conversation: list[Message]

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "caller": self.caller.id,
                "response": self.response,
                "conversation": self.conversation,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> StoredResponse:
        data = orjson.loads(raw)
        return cls(data["id"], Caller(data["caller"]), data["response"], data["conversation"])


class ResponseStore(Protocol):
    """Stored responses by caller and id: `get` and `delete` of an id another caller stored behave as
    for an id never stored (None, False), so a caller cannot even learn that it exists."""

    async def put(self, entry: StoredResponse) -> None: ...

    async def get(self, caller: Caller, response_id: str) -> StoredResponse | None: ...

    async def delete(self, caller: Caller, response_id: str) -> bool: ...

    async def close(self) -> None: ...

    def describe(self) -> str:
        """For the start-up log: which store, and who shares it (no password, ever)."""
        ...


@dataclass(frozen=True)
class StoreLimits:
    """What a store may hold; the runtime fills it from MOA_RESPONSES_STORE_* (the service reads no
    process settings)."""

    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    ttl_s: float = 86_400.0

    def too_large(self, entry: StoredResponse, raw: bytes) -> bool:
        """An entry larger than the whole store may hold is not kept (said once, in the log)."""
        if len(raw) <= self.max_bytes:
            return False
        logger.warning(
            "response %s not stored: %d bytes, over MOA_RESPONSES_STORE_MAX_BYTES", entry.id, len(raw)
        )
        return True


class NoStore:
    """`MOA_RESPONSES_STORE=none`: nothing is kept, every id is unknown."""

    async def put(self, entry: StoredResponse) -> None:
        return None

    async def get(self, caller: Caller, response_id: str) -> StoredResponse | None:
        return None

    async def delete(self, caller: Caller, response_id: str) -> bool:
        return False

    async def close(self) -> None:
        return None

    def describe(self) -> str:
        return "none, nothing is stored"
