"""The response cache's key: the canonical request (every field that can change the answer) and the
caller. Any field not known to be answer-neutral is part of the key, a field the gateway does not know
included: a new OpenAI parameter can only split the cache, never mix two answers."""

from __future__ import annotations

import hashlib

import orjson

from moa_gateway.core.caller import Caller
from moa_gateway.wire.requests import ChatCompletionRequest

KEY_VERSION = 1  # raised when what the key holds changes, so old entries are never read

# Request fields that cannot change the answer, left out of the key. `stream` and `stream_options`
# (`final_params` leaves them out already) only frame it: a hit is replayed in the shape asked for.
# `user`, `metadata`, `store`, `safety_identifier`, `prompt_cache_key` and `service_tier` tag, keep,
# route or bill a request at the provider; its answer is the same.
ANSWER_NEUTRAL = frozenset(
    {"user", "metadata", "store", "safety_identifier", "prompt_cache_key", "service_tier"}
)
# The `moa` options that change the run: its topology and its budget. The others (`include_proposals`,
# `stream_events`, `cache`) decide whether the cache is used at all (app/moa_gateway/service/cache/cache.py).
RUN_OPTIONS = frozenset({"layers", "aggregator", "max_cost_usd"})


def cache_key(request: ChatCompletionRequest, caller: Caller, namespace: str) -> str:
    """A hex SHA-256 of the canonical request: the model id, the messages as sent, every other field
    sent but the answer-neutral ones (nulls as unsent), the run's `moa` options, the caller (so callers
    never read each other's answers) and `namespace` (the config's fingerprint: a changed pipeline or
    model misses)."""
    params = {name: value for name, value in request.final_params().items() if name not in ANSWER_NEUTRAL}
    canonical = {
        "v": KEY_VERSION,
        "namespace": namespace,
        "caller": caller.id,
        "model": request.model,
        "messages": request.message_dicts(),
        "params": params,
        "moa": request.moa.model_dump(include=set(RUN_OPTIONS), exclude_none=True),
    }
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()
