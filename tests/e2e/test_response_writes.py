"""What a client reads first from a `moa-gateway serve` process (its own process, as users run it): the
response head is not a write of its own, so a JSON answer arrives whole with its head and a stream's head
with its first token, in one read (one wake-up of the client). uvicorn writes a head on
`http.response.start`; app/moa_gateway/server.py's HeadTurnWrites sends what a response wrote in its first turn of
the event loop together."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

from tests.support.asks import SKY
from tests.support.cli import free_port, serve, wait_ready

CONFIG = {
    "providers": {"sim": {"type": "simulated", "ttft_ms": 0, "tokens_per_s": 0}},
    "models": {"fast": {"provider": "sim"}},
    "pipelines": {"moa": {"layers": [{"proposers": ["fast", "fast"]}], "aggregator": "fast"}},
}


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    config: Path = tmp_path_factory.mktemp("writes") / "moa.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    port = free_port()
    process = serve(config, port, {"MOA_LOG_LEVEL": "warning"})
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        yield port
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def first_read(port: int, body: dict[str, object]) -> tuple[bytes, bytes]:
    """The head and what came after it in one read of the client's socket, the first after the request."""
    content = orjson.dumps(body)
    request = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(request + b"content-length: %d\r\n\r\n" % len(content) + content)
        head, _, rest = client.recv(1 << 20).partition(b"\r\n\r\n")
    return head, rest


@pytest.mark.parametrize("model", ["fast", "moa"])
def test_a_json_answer_arrives_whole_with_its_head(port: int, model: str) -> None:
    for _ in range(5):
        head, rest = first_read(port, {"model": model, "messages": [{"role": "user", "content": SKY}]})
        assert head.startswith(b"HTTP/1.1 200 ")
        length = next(line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))
        assert len(rest) == int(length.split(b":")[1]), rest
        assert orjson.loads(rest)["choices"][0]["message"]["content"]


@pytest.mark.parametrize("model", ["fast", "moa"])
def test_a_stream_s_head_arrives_with_its_first_token(port: int, model: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": SKY}], "stream": True}
    for _ in range(5):
        head, rest = first_read(port, body)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b'"content":"' in rest.replace(b'"content":""', b""), rest
