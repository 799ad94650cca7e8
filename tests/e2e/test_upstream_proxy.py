"""Upstream calls go through the HTTP proxy the environment names (HTTP_PROXY, NO_PROXY), with either
upstream client, over real HTTP: the "proxy" here is a real server on 127.0.0.1 that answers in the
upstream's place, and the upstream's host name does not resolve, so only a proxied call can succeed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from app.config import parse_config
from app.main import create_app
from app.settings import Settings
from tests.support.servers import ServerThread

UNRESOLVABLE = "http://models.example.invalid/v1"
ASK = [{"role": "user", "content": "Hi"}]


class Proxy:
    """Answers every chat completion itself, noting the Host each request was meant for."""

    def __init__(self) -> None:
        self.url = ""  # where it listens, once serving
        self.hosts: list[str] = []
        self.app = FastAPI()

        @self.app.post("/v1/chat/completions")
        async def chat(request: Request) -> dict[str, Any]:
            self.hosts.append(request.headers["host"])
            message = {"role": "assistant", "content": "via the proxy"}
            return {"id": "x", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


@pytest.fixture(scope="module")
def proxy() -> Iterator[Proxy]:
    proxy = Proxy()
    with ServerThread(proxy.app) as server:
        proxy.url = server.url
        yield proxy


def gateway(base_url: str, transport: str) -> ServerThread:
    config = {
        "providers": {"up": {"type": "openai", "base_url": base_url}},
        "models": {"m": {"provider": "up"}},
        "pipelines": {},
    }
    return ServerThread(create_app(Settings(upstream_transport=transport), parse_config(config, "proxy")))


def ask(server: ServerThread) -> httpx.Response:
    """The test's own request goes straight to the gateway, whatever the environment says."""
    body = {"model": "m", "messages": ASK}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=10, trust_env=False)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_calls_go_through_the_environments_proxy(
    proxy: Proxy, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    before = len(proxy.hosts)

    with gateway(UNRESOLVABLE, transport) as server:
        response = ask(server)

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "via the proxy"
    assert proxy.hosts[before:] == ["models.example.invalid"]


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_no_proxy_hosts_are_called_directly(
    proxy: Proxy, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    before = len(proxy.hosts)

    with gateway(f"{proxy.url}/v1", transport) as server:
        response = ask(server)

    assert response.status_code == 200, response.text
    assert len(proxy.hosts) == before + 1
