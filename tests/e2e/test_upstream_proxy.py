"""Upstream calls go through the HTTP proxy the environment names (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY,
NO_PROXY), with either upstream client, over real HTTP: the "proxy" here is a real server on 127.0.0.1
that answers in the upstream's place, and the upstream's host name does not resolve, so only a proxied
call can succeed."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from moa_gateway.settings import Settings
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape
from tests.support.servers import ServerThread, raw_responder

UNRESOLVABLE = "http://models.example.invalid/v1"
ASK = [{"role": "user", "content": "Hi"}]
TRANSPORTS = ["httptools", "aiohttp", "httpx"]
PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]


class Proxy:
    """Answers every chat completion itself, noting the Host each request was meant for and the
    Proxy-Authorization it carried."""

    def __init__(self) -> None:
        self.url = ""  # where it listens, once serving
        self.hosts: list[str] = []
        self.credentials: list[str | None] = []
        self.app = FastAPI()

        @self.app.post("/v1/chat/completions")
        async def chat(request: Request) -> dict[str, Any]:
            self.hosts.append(request.headers["host"])
            self.credentials.append(request.headers.get("proxy-authorization"))
            message = {"role": "assistant", "content": "via the proxy"}
            return {"id": "x", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


@pytest.fixture(scope="module")
def proxy() -> Iterator[Proxy]:
    proxy = Proxy()
    with ServerThread(proxy.app) as server:
        proxy.url = server.url
        yield proxy


@pytest.fixture
def refusing_proxy() -> Iterator[str]:
    """A proxy that answers every request, CONNECT included, with 407."""
    refusal = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    with raw_responder(lambda head: refusal) as address:
        yield f"http://{address}"


def proxy_env(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    """Exactly these proxy variables set, in either case, for the gateway made next."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def gateway(base_url: str, transport: str) -> ServerThread:
    config = {
        "providers": {"up": {"type": "openai", "base_url": base_url}},
        "models": {"m": {"provider": "up"}},
        "pipelines": {},
    }
    return serve_gateway(config, Settings(upstream_transport=transport))


def ask(server: ServerThread) -> httpx.Response:
    """The test's own request goes straight to the gateway, whatever the environment says."""
    body = {"model": "m", "messages": ASK}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=10, trust_env=False)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY"])
def test_calls_go_through_the_environments_proxy(
    proxy: Proxy, transport: str, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_env(monkeypatch, **{variable: proxy.url})
    before = len(proxy.hosts)

    with gateway(UNRESOLVABLE, transport) as server:
        response = ask(server)

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "via the proxy"
    assert proxy.hosts[before:] == ["models.example.invalid"]
    assert proxy.credentials[before:] == [None]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_proxys_credentials_are_sent_to_it(
    proxy: Proxy, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_env(monkeypatch, HTTP_PROXY=proxy.url.replace("http://", "http://gw:s3cret@"))
    before = len(proxy.credentials)

    with gateway(UNRESOLVABLE, transport) as server:
        response = ask(server)

    assert response.status_code == 200, response.text
    assert proxy.credentials[before:] == [f"Basic {base64.b64encode(b'gw:s3cret').decode()}"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_no_proxy_hosts_are_called_directly(
    proxy: Proxy, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_env(monkeypatch, HTTP_PROXY="http://127.0.0.1:9", NO_PROXY="127.0.0.1")  # nothing on port 9
    before = len(proxy.hosts)

    with gateway(f"{proxy.url}/v1", transport) as server:
        response = ask(server)

    assert response.status_code == 200, response.text
    assert len(proxy.hosts) == before + 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_proxy_refusing_the_tunnel_is_a_connection_failure(
    refusing_proxy: str, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_env(monkeypatch, HTTPS_PROXY=refusing_proxy)

    with gateway("https://models.example.invalid/v1", transport) as server:
        response = ask(server)
        metrics = Scrape(httpx.get(f"{server.url}/metrics", timeout=10, trust_env=False).text)

    assert response.status_code == 502, response.text
    assert "the provider could not be reached" in response.json()["error"]["message"]
    assert metrics.value("moa_upstream_errors_total", model="m", kind="connection") >= 1
    assert metrics.value("moa_upstream_errors_total", model="m", kind="bad_response") == 0
