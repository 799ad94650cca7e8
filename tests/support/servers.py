"""Real uvicorn servers on free loopback ports, run in background threads, for e2e tests and benches."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import uvicorn

from moa_gateway.server import uvicorn_config
from moa_gateway.settings import Settings


class ServerThread:
    """`with ServerThread(app) as server:` serves `app` on 127.0.0.1 at `server.url`.

    With `settings`, through the gateway's production server setup (`app.server.uvicorn_config`: its
    protocol limits, timeouts and keep-alive); without, a plain uvicorn (simulators, stub upstreams).
    """

    def __init__(self, app: Any, settings: Settings | None = None) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        if settings is None:
            # A request that outlives its test (a client that gave up on a slow upstream) may hold the
            # server for at most a second at exit, not the whole `join` below.
            config = uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="on",
                log_config=None,
                timeout_graceful_shutdown=1,
            )
        else:
            config = uvicorn_config(app, settings)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


class HangingUpstream:
    """A raw ASGI upstream that never answers, and notes when each request arrives and when its client
    (the gateway) closes the connection: the observable end of a cancelled upstream call."""

    def __init__(self) -> None:
        self.arrived: list[float] = []
        self.closed: list[float] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        while (await receive()).get("more_body"):  # read the request body
            pass
        with self._lock:
            self.arrived.append(time.monotonic())
        while (await receive())["type"] != "http.disconnect":
            pass
        with self._lock:
            self.closed.append(time.monotonic())

    def wait(self, what: list[float], count: int, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(what) >= count:
                    return True
            time.sleep(0.002)
        return False


def raw_chat_request(port: int, stream: bool, model: str = "moa") -> socket.socket:
    """Send a chat completion over a bare socket, so the caller controls exactly when it closes."""
    body = b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "stream": %s}' % (
        model.encode(),
        b"true" if stream else b"false",
    )
    return raw_post(port, "/v1/chat/completions", body)


def raw_post(port: int, path: str, body: bytes) -> socket.socket:
    """POST a JSON body over a bare socket, so the caller controls exactly when it closes."""
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(head + body)
    return client


def hanging_moa_config(upstream_url: str) -> dict[str, Any]:
    """A 3-proposer pipeline `moa` whose every model is on `upstream_url` (a HangingUpstream)."""
    provider = {"type": "openai", "base_url": f"{upstream_url}/v1", "timeout_s": 60}
    return {
        "providers": {"slow": provider},
        "models": {name: {"provider": "slow"} for name in ["a", "b", "c", "agg"]},
        "pipelines": {"moa": {"layers": [{"proposers": ["a", "b", "c"]}], "aggregator": "agg"}},
    }


@contextmanager
def raw_responder(answer: Callable[[bytes], bytes]) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that reads each connection's request head and sends `answer(head)`
    (a proxy that refuses, a server that echoes what it was sent); yields its `host:port`."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            with connection:
                connection.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head and (data := connection.recv(4096)):
                    head += data
                connection.sendall(answer(head))

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
