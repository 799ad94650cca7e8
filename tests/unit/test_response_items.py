"""Resolving `item_reference` input items (service/items.py) with a fake store lookup: output item ids
name their response, a reference costs one lookup per response, and the number of responses one
request may reference is bounded."""

from __future__ import annotations

from typing import Any

import pytest

from moa_gateway.core.caller import ANONYMOUS
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.service.items import MAX_REFERENCED_RESPONSES, with_referenced_items
from moa_gateway.service.response_store import StoredResponse
from moa_gateway.wire.responses import ResponsesRequest
from moa_gateway.wire.responses_output import item_id, new_id, response_id_of


def test_an_item_id_names_its_response() -> None:
    response_id = new_id("resp")
    for prefix in ("msg", "rs", "fc"):
        made = item_id(prefix, response_id)
        assert made.startswith(f"{prefix}_") and response_id_of(made) == response_id
    assert response_id_of(item_id("msg", response_id)) != response_id_of(item_id("msg", new_id("resp")))


@pytest.mark.parametrize("foreign", ["msg_1", new_id("msg"), "msg_" + "g" * 40, "rs", ""])
def test_ids_not_made_here_name_no_response(foreign: str) -> None:
    assert response_id_of(foreign) is None


class Lookups:
    def __init__(self, responses: dict[str, StoredResponse]) -> None:
        self.responses = responses
        self.asked: list[str] = []

    async def __call__(self, response_id: str) -> StoredResponse | None:
        self.asked.append(response_id)
        return self.responses.get(response_id)


def stored(items: list[dict[str, Any]]) -> StoredResponse:
    response_id = new_id("resp")
    prefixes = {"message": "msg", "function_call": "fc"}
    output = [{**item, "id": item_id(prefixes[item["type"]], response_id)} for item in items]
    return StoredResponse(response_id, ANONYMOUS, {"id": response_id, "output": output}, [])


async def test_each_response_is_looked_up_once() -> None:
    entry = stored([{"type": "message", "role": "assistant", "content": []}, {"type": "function_call"}])
    message, call = entry.response["output"]
    lookups = Lookups({entry.id: entry})
    request = ResponsesRequest(
        model="m",
        input=[
            {"type": "item_reference", "id": message["id"]},
            {"id": call["id"]},  # the openai SDK's ItemReference may leave out its type
            {"role": "user", "content": "next"},
        ],
    )
    resolved = await with_referenced_items(request, lookups)
    assert resolved.input == [message, call, {"role": "user", "content": "next"}]
    assert lookups.asked == [entry.id]


async def test_references_to_too_many_responses_are_a_400_after_the_limit() -> None:
    entries = [stored([{"type": "message"}]) for _ in range(MAX_REFERENCED_RESPONSES + 1)]
    lookups = Lookups({e.id: e for e in entries})
    request = ResponsesRequest(
        model="m", input=[{"type": "item_reference", "id": e.response["output"][0]["id"]} for e in entries]
    )
    with pytest.raises(Failure) as caught:
        await with_referenced_items(request, lookups)
    assert caught.value.kind is FailureKind.INVALID_REQUEST and caught.value.param == "input"
    assert len(lookups.asked) == MAX_REFERENCED_RESPONSES
