"""What a response writes in the turn of the event loop that writes its head goes out in one write, later
writes go straight through (app/moa_gateway/server.py HeadTurnWrites): the writes a transport that
records them receives."""

from __future__ import annotations

import asyncio
from typing import cast

from moa_gateway.server import HeadTurnWrites

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Recording:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"the transport's {name}"


def wrapped() -> tuple[HeadTurnWrites, Recording]:
    recording = Recording()
    return HeadTurnWrites(cast(asyncio.Transport, recording), asyncio.get_running_loop()), recording


async def test_the_head_s_turn_goes_out_in_one_write_at_its_end_later_writes_at_once() -> None:
    transport, recording = wrapped()

    transport.write(HEAD)
    transport.write(b"{}")
    assert recording.writes == []
    await asyncio.sleep(0)
    transport.write(b"next turn")

    assert recording.writes == [HEAD + b"{}", b"next turn"]


async def test_a_100_continue_goes_out_at_once() -> None:
    transport, recording = wrapped()

    transport.write(CONTINUE)

    assert recording.writes == [CONTINUE]


async def test_closing_sends_what_is_held_first() -> None:
    transport, recording = wrapped()

    transport.write(HEAD)
    transport.close()

    assert recording.writes == [HEAD] and recording.closed


async def test_what_is_held_when_the_connection_closes_is_dropped() -> None:
    transport, recording = wrapped()

    transport.write(HEAD)
    recording.closed = True
    await asyncio.sleep(0)

    assert recording.writes == []
    assert transport.get_extra_info("peername") == "the transport's peername"
