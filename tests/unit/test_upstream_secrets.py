"""The redaction list holds each credential in the form each upstream client library actually sends it."""

from __future__ import annotations

import base64

import aiohttp
import httpx
import pytest
from yarl import URL

from moa_gateway.upstream.secrets import proxy_secrets, userinfo_secrets

# Non-ASCII: aiohttp encodes proxy credentials in Latin-1, httpx in UTF-8, so the two tokens differ.
PROXY = "http://gw%C3%A4:p%C3%A4ss%40w0rd@proxy.internal:3128"


def test_the_proxy_authorization_each_client_sends_is_listed() -> None:
    aiohttp_token = aiohttp.BasicAuth.from_url(URL(PROXY))
    assert aiohttp_token is not None
    httpx_auth = httpx.Proxy(PROXY).raw_auth
    assert httpx_auth is not None
    user, password = httpx_auth
    httpx_token = base64.b64encode(user + b":" + password).decode()  # as httpcore builds its header

    listed = userinfo_secrets(PROXY)

    assert aiohttp_token.encode().removeprefix("Basic ") in listed
    assert httpx_token in listed
    assert httpx_token != aiohttp_token.encode().removeprefix("Basic ")
    assert {"gwä:päss@w0rd", "päss@w0rd", "p%C3%A4ss%40w0rd"} <= set(listed)


def test_a_proxy_variable_without_a_scheme_is_read_as_the_clients_read_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("ALL_PROXY", "ops:Hunter2x@proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "user:nothing@here")

    listed = proxy_secrets()

    assert "ops:Hunter2x" in listed and "Hunter2x" in listed
    assert "nothing" not in listed
