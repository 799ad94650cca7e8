"""The default upstream client (app/moa_gateway/upstream/httptools_client.py) against a real upstream on
127.0.0.1 that keeps its connections open, through the gateway and the official openai SDK: connections
are reused, each way HTTP/1.1 frames an answer is read whole, a connection the upstream dropped while idle
is not used again, and TLS is verified against the trust store."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import trustme

from tests.support.gateways import serve_gateway
from tests.support.keepalive_upstream import KeepAliveUpstream, Reply
from tests.support.servers import ServerThread

ASK = [{"role": "user", "content": "Hi"}]


def completion(text: str) -> bytes:
    message = {"role": "assistant", "content": text}
    return json.dumps(
        {"id": "x", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    ).encode()


def sized(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n%scontent-length: %d\r\n\r\n"
    return head % (b"".join(extra), len(body)) + body


def chunked(body: bytes) -> bytes:
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\n\r\n"
    )


def gateway(base_url: str) -> ServerThread:
    config = {
        "providers": {"up": {"type": "openai", "base_url": base_url, "retries": {"max_attempts": 1}}},
        "models": {"m": {"provider": "up"}},
        "pipelines": {},
    }
    return serve_gateway(config)


def ask(server: ServerThread) -> str:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=10)
    answer = client.chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
    return answer.choices[0].message.content or ""


def test_calls_in_turn_share_one_connection() -> None:
    upstream = KeepAliveUpstream(lambda n: Reply(sized(completion(f"answer {n}"))))
    with upstream, gateway(upstream.url) as server:
        answers = [ask(server) for _ in range(5)]

    assert answers == [f"answer {n}" for n in range(1, 6)]
    assert upstream.requests_per_connection == [5]


FRAMINGS = {
    "content-length": Reply(sized(completion("framed"))),
    "chunked": Reply(chunked(completion("framed"))),
    "chunked, a few bytes at a time": Reply(chunked(completion("framed")), pieces=9),
    # No length: the body ends with the connection (HTTP/1.1 allows it; some proxies do it).
    "until the connection closes": Reply(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + completion("framed"), close=True
    ),
    "after 100 Continue and 103 Early Hints": Reply(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n"
        + sized(completion("framed"))
    ),
}


@pytest.mark.parametrize("framing", FRAMINGS)
def test_each_framing_of_an_answer_is_read_whole(framing: str) -> None:
    with KeepAliveUpstream(lambda n: FRAMINGS[framing]) as upstream, gateway(upstream.url) as server:
        assert [ask(server), ask(server)] == ["framed", "framed"]


def test_a_connection_the_upstream_closed_while_idle_is_not_used_again() -> None:
    # Each answer says keep-alive, then the upstream drops the connection anyway (an idle timeout).
    upstream = KeepAliveUpstream(lambda n: Reply(sized(completion(f"answer {n}")), close=True))
    with upstream, gateway(upstream.url) as server:
        answers = [ask(server) for _ in range(3)]

    assert answers == ["answer 1", "answer 2", "answer 3"]
    assert upstream.requests_per_connection == [1, 1, 1]


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_upstream(authority: trustme.CA) -> Iterator[KeepAliveUpstream]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    with KeepAliveUpstream(lambda n: Reply(sized(completion("over TLS"))), context) as upstream:
        yield upstream


def test_an_https_upstream_signed_by_a_trusted_authority_answers(
    tls_upstream: KeepAliveUpstream, authority: trustme.CA, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # the trust store the gateway's clients read

    with gateway(tls_upstream.url) as server:
        assert [ask(server), ask(server)] == ["over TLS", "over TLS"]

    assert tls_upstream.requests_per_connection == [2]


def test_an_https_upstream_with_an_untrusted_certificate_is_not_called(
    tls_upstream: KeepAliveUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)

    with gateway(tls_upstream.url) as server, pytest.raises(openai.APIStatusError) as failed:
        ask(server)

    assert failed.value.status_code == 502
    assert (
        "could not be reached" in failed.value.message and "CERTIFICATE_VERIFY_FAILED" in failed.value.message
    )
    assert tls_upstream.requests_per_connection in ([], [0])  # the handshake failed: no request was read
