"""The simulator's prompt cache, as providers' automatic prefix caching works: a prompt's tokens are read
from the cache as far as its longest prefix this model was sent recently, counted in blocks.

As OpenAI documents its own: prompts under 1024 tokens are not cached, and the cached part grows in
blocks of 128 tokens. A prompt's tokens are those `usage.prompt_tokens` counts (a role marker per
message, then its text's words and punctuation marks: app/moa_gateway/core/tokens.py); a message's role
marker also stands for its tool calls and tool call id, so prompts that differ only there differ. Memory
is bounded: the most recently used block prefixes, each forgotten after `ttl_s` unused.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from moa_gateway.core.tokens import message_text, tokens_of

MIN_TOKENS = 1024
BLOCK_TOKENS = 128
MAX_BLOCKS = 1 << 16  # remembered block prefixes, every model together (about 6 MiB)
TTL_S = 600.0  # providers keep a prefix 5 to 10 minutes after its last use


class PrefixCache:
    """Shared by every request of one simulator (its server, or one `type: simulated` provider)."""

    def __init__(
        self,
        min_tokens: int = MIN_TOKENS,
        block_tokens: int = BLOCK_TOKENS,
        max_blocks: int = MAX_BLOCKS,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._min, self._block, self._max, self._ttl_s = min_tokens, block_tokens, max_blocks, ttl_s
        self._clock = clock
        self._blocks: OrderedDict[bytes, float] = OrderedDict()  # block prefix digest -> last used

    def __len__(self) -> int:
        return len(self._blocks)

    def read(self, model: str, messages: list[dict[str, Any]]) -> int:
        """The prompt tokens served from the cache; the prompt's block prefixes are remembered for the
        next request (whether or not they were cached)."""
        now = self._clock()
        digests = list(self._prefixes(model, messages))
        cached = 0
        for digest in digests:
            used = self._blocks.get(digest)
            if used is None or now - used > self._ttl_s:
                break
            cached += self._block
        for digest in digests:
            self._blocks[digest] = now
            self._blocks.move_to_end(digest)
        while len(self._blocks) > self._max:
            self._blocks.popitem(last=False)
        return cached

    def _prefixes(self, model: str, messages: list[dict[str, Any]]) -> Iterator[bytes]:
        """A digest of each whole block's prefix of the prompt (none for a prompt under the minimum)."""
        tokens = [token for message in messages for token in _message_tokens(message)]
        if len(tokens) < self._min:
            return
        running = hashlib.blake2b(model.encode() + b"\x00", digest_size=16)
        for start in range(0, len(tokens) - self._block + 1, self._block):
            running.update("\x00".join(tokens[start : start + self._block]).encode() + b"\x00")
            yield running.copy().digest()


def _message_tokens(message: dict[str, Any]) -> list[str]:
    """One role marker (standing for the role and any tool calls or ids), then the text's tokens."""
    extra = {k: message[k] for k in ("tool_calls", "tool_call_id", "name", "function_call") if k in message}
    tag = hashlib.blake2b(orjson.dumps(extra, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()
    marker = f"<{message.get('role')}{tag if extra else ''}>"
    return [marker, *tokens_of(message_text(message))]
