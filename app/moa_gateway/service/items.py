"""`item_reference` input items: earlier output named by id instead of repeated, as Vercel's AI SDK
sends it when responses are stored (its default). Each is replaced by the stored item it names; a
reasoning item that cannot be found is dropped (chat models take no reasoning back anyway).

Output item ids start with their response's id (`responses_output.item_id`), so a reference costs one
store lookup, through the same lookup (and so the same caller's view) as `previous_response_id`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import quoted
from moa_gateway.service.response_store import StoredResponse
from moa_gateway.wire.responses import ResponsesRequest
from moa_gateway.wire.responses_output import response_id_of

# A stored response by id, or None: the store's `get`, narrowed to the request's caller.
ResponseLookup = Callable[[str], Awaitable[StoredResponse | None]]

# Distinct responses one request may reference: each is a store read and a decode. An AI SDK
# conversation references one per earlier turn.
MAX_REFERENCED_RESPONSES = 1000


def is_reference(item: dict[str, Any]) -> bool:
    """`{"type": "item_reference", "id": ...}`, or the bare `{"id": ...}` the openai SDK's type allows."""
    kind = item.get("type")
    return kind == "item_reference" or (kind is None and "role" not in item and "id" in item)


async def with_referenced_items(request: ResponsesRequest, lookup: ResponseLookup) -> ResponsesRequest:
    """The request with each `item_reference` in `input` replaced by the output item it names.

    Raises Failure: 404 for an item no stored response holds (never stored, `store: false`, deleted,
    expired), 400 for a reference without an id or past MAX_REFERENCED_RESPONSES responses."""
    if not isinstance(request.input, list) or not any(is_reference(item) for item in request.input):
        return request
    outputs: dict[str, dict[str, dict[str, Any]]] = {}  # response id -> its output items by id
    items: list[dict[str, Any]] = []
    for index, item in enumerate(request.input):
        if not is_reference(item):
            items.append(item)
            continue
        wanted = item.get("id")
        if not isinstance(wanted, str) or not wanted:
            raise Failure(
                FailureKind.INVALID_REQUEST,
                f"input[{index}].id: an item_reference needs the id of an item",
                param=f"input[{index}].id",
            )
        found = await _stored_item(wanted, outputs, lookup)
        if found is not None:
            items.append(found)
        elif not wanted.startswith("rs_"):  # reasoning that is gone is dropped, as reasoning input is
            raise Failure(
                FailureKind.NOT_FOUND,
                f"Item with id {quoted(wanted)} not found. Items are not persisted when `store` is set "
                "to false. Try again with `store` set to true, or remove this item from your input.",
                param=f"input[{index}]",
            )
    return request.model_copy(update={"input": items})


async def _stored_item(
    wanted: str, outputs: dict[str, dict[str, dict[str, Any]]], lookup: ResponseLookup
) -> dict[str, Any] | None:
    response_id = response_id_of(wanted)
    if response_id is None:
        return None
    if response_id not in outputs:
        if len(outputs) >= MAX_REFERENCED_RESPONSES:
            raise Failure(
                FailureKind.INVALID_REQUEST,
                f"input: items of more than {MAX_REFERENCED_RESPONSES} responses are referenced; "
                "continue with `previous_response_id` instead",
                param="input",
            )
        stored = await lookup(response_id)
        output = stored.response.get("output") if stored is not None else None
        outputs[response_id] = {
            str(i.get("id")): i for i in output or [] if isinstance(i, dict) and i.get("id")
        }
    return outputs[response_id].get(wanted)
