"""The open-loop generator (bench/poisson.py): arrivals keep to their rate whatever the answers' latency,
and each latency runs from when the request was due."""

from __future__ import annotations

import asyncio

from bench.poisson import generate, request_bytes

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class _SlowAnswers(asyncio.Protocol):
    """Answers each request (a head and a 2-byte body) `DELAY_S` after it arrived."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n{}" in self.buffer:
            self.buffer = self.buffer.split(b"\r\n\r\n{}", 1)[1]
            asyncio.get_running_loop().call_later(DELAY_S, self.answer)

    def answer(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(ANSWER)  # type: ignore[attr-defined]


DELAY_S = 0.5


def test_arrivals_keep_their_rate_while_answers_take_half_a_second() -> None:
    async def run() -> tuple[int, list[float], int, int]:
        server = await asyncio.get_running_loop().create_server(_SlowAnswers, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            request = request_bytes("127.0.0.1", port, "/", b"{}")
            out = await generate("127.0.0.1", port, request, 200, 1.0, 0.5, 5.0, lambda edge: None)
        return out.sent, out.latencies_s, out.status_errors + out.socket_errors, out.connections

    sent, latencies, errors, connections = asyncio.run(run())

    # Poisson: 200 expected in the 1 s window, a standard deviation of ~14. A closed loop would wait for
    # answers; here ~100 are in flight at once, each on a connection of its own.
    assert 150 <= sent <= 250
    assert errors == 0 and len(latencies) == sent
    assert connections >= 60
    assert min(latencies) >= 0.5
