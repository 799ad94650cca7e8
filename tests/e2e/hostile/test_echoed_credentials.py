"""Credentials the gateway sends in a form other than the configured string never come back out: the
`Basic base64(user:pass)` made from a base URL's userinfo, and the proxy's own credentials (from
HTTP_PROXY / HTTPS_PROXY / ALL_PROXY), echoed by an upstream or by the proxy, over real HTTP with both
upstream clients, are kept out of client errors, logs and the eval report."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from moa_gateway.cli import build_parser
from moa_gateway.cli.eval import evaluate
from moa_gateway.config import parse_config
from moa_gateway.settings import Settings
from tests.support.cli import free_port, serve, wait_ready
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread, raw_responder

TRANSPORTS = ["httptools", "aiohttp", "httpx"]
UNRESOLVABLE_HOST = "models.example.invalid"  # only a proxied call reaches anything
# Characters that must be percent-encoded in a URL, so the decoded and the written forms differ.
UPSTREAM_USER, UPSTREAM_PASSWORD = "svc-ZkQ7", "up@ss/W0rd:Xq9"
PROXY_USER, PROXY_PASSWORD = "gw-proxy-M4n", "pr0xy#Pw%Tz8"


def written(text: str) -> str:
    """`text` percent-encoded, as it is written in a URL's userinfo."""
    return "".join(c if c.isalnum() or c in "-._~" else f"%{ord(c):02X}" for c in text)


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def forms(user: str, password: str) -> list[str]:
    """Every form of one credential pair that must never be shown."""
    token = basic(user, password)
    return [
        user,
        password,
        written(password),
        f"{user}:{password}",
        f"{written(user)}:{written(password)}",
        token,
        token.rstrip("="),
    ]


CREDENTIAL_FORMS = forms(UPSTREAM_USER, UPSTREAM_PASSWORD) + forms(PROXY_USER, PROXY_PASSWORD)


def echo(authorization: str, proxy_authorization: str) -> str:
    """What a chatty upstream or proxy says: the header values it received, and what they decode to."""
    decoded = [
        base64.b64decode(value.removeprefix("Basic ")).decode("utf-8", "replace")
        for value in (authorization, proxy_authorization)
        if value.startswith("Basic ")
    ]
    return f"denied authorization={authorization!r} proxy-authorization={proxy_authorization!r} as {decoded}"


def echoing_app() -> FastAPI:
    """Plays the proxy and the upstream behind it: every answer is an error echoing the credentials, in
    the shape the model's name asks for."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        said = echo(request.headers.get("authorization", ""), request.headers.get("proxy-authorization", ""))
        model = body["model"]
        if model == "rejects":
            return JSONResponse(
                {"error": {"message": said, "type": "invalid_request_error"}}, status_code=400
            )
        if model == "proxy-refuses":
            return PlainTextResponse(said, status_code=407)
        if model == "fails-mid-stream":
            frame = json.dumps({"error": {"message": said}})
            return StreamingResponse(iter([f"data: {frame}\n\n"]), media_type="text/event-stream")
        return PlainTextResponse(said, status_code=502)

    return app


@pytest.fixture(scope="module")
def echoing() -> Iterator[ServerThread]:
    with ServerThread(echoing_app()) as server:
        yield server


@pytest.fixture
def refusing_tunnel() -> Iterator[str]:
    """A proxy that refuses every CONNECT with 407, echoing the credentials in its status line and body."""

    def refusal(head: bytes) -> bytes:
        lines = head.decode("latin-1").split("\r\n")
        sent = dict(line.partition(": ")[::2] for line in lines[1:] if ": " in line)
        said = echo("", next((v for k, v in sent.items() if k.lower() == "proxy-authorization"), ""))
        body = said.encode()
        return f"HTTP/1.1 407 {said}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body

    with raw_responder(refusal) as address:
        yield address


def only_proxy(monkeypatch: pytest.MonkeyPatch, name: str, host: str) -> None:
    """The environment names exactly one proxy, `host`, with the proxy's credentials."""
    for variable in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]:
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(variable.lower(), raising=False)
    monkeypatch.setenv(name, f"http://{written(PROXY_USER)}:{written(PROXY_PASSWORD)}@{host}")


def config_data(scheme: str) -> dict[str, Any]:
    """Every model on one provider whose base URL carries credentials, behind the environment's proxy."""
    userinfo = f"{written(UPSTREAM_USER)}:{written(UPSTREAM_PASSWORD)}"
    provider = {
        "type": "openai",
        "base_url": f"{scheme}://{userinfo}@{UNRESOLVABLE_HOST}/v1",
        "retries": {"max_attempts": 1},
    }
    names = ["rejects", "proxy-refuses", "fails-mid-stream", "fails"]
    return {"providers": {"up": provider}, "models": {name: {"provider": "up"} for name in names}}


def leaked(texts: list[str]) -> list[str]:
    return [form for form in CREDENTIAL_FORMS if any(form in text for text in texts)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_credentials_echoed_by_an_upstream_or_its_proxy_are_scrubbed(
    echoing: ServerThread, transport: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    only_proxy(monkeypatch, "HTTP_PROXY", echoing.url.removeprefix("http://"))
    config = parse_config(config_data("http"), "echo")
    seen: list[str] = []
    with (
        caplog.at_level(logging.DEBUG),
        serve_gateway(config, Settings(upstream_transport=transport)) as gateway,
        httpx.Client(base_url=gateway.url, timeout=10, trust_env=False) as client,
    ):
        for model, stream, status in [
            ("rejects", False, 400),
            ("proxy-refuses", False, 502),
            ("fails", False, 502),
            ("fails-mid-stream", True, 502),
        ]:
            body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]}
            response = client.post("/v1/chat/completions", json=body)
            assert response.status_code == status, response.text
            seen.append(response.text)

    assert all("denied authorization=" in text for text in seen), "the echo was passed on, scrubbed"
    assert "[redacted]" in seen[0]
    assert leaked(seen) == []
    assert leaked([caplog.text, *(str(record.__dict__) for record in caplog.records)]) == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_credentials_echoed_by_a_proxy_refusing_the_tunnel_stay_out_of_the_servers_debug_log(
    refusing_tunnel: str, transport: str, tmp_path: Path
) -> None:
    config = tmp_path / "moa.yaml"
    config.write_text(yaml.safe_dump(config_data("https")))
    env = {name: value for name, value in os.environ.items() if not name.lower().endswith("_proxy")}
    env |= {"MOA_LOG_LEVEL": "debug", "MOA_UPSTREAM_TRANSPORT": transport}
    env["HTTPS_PROXY"] = f"http://{written(PROXY_USER)}:{written(PROXY_PASSWORD)}@{refusing_tunnel}"
    port = free_port()
    process = serve(config, port, env)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        body = {"model": "rejects", "messages": [{"role": "user", "content": "Hi"}]}
        response = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]

    assert response.status_code == 502, response.text
    assert "the provider could not be reached" in response.json()["error"]["message"]
    assert "upstream_call" in output, "the server's log was read"
    assert leaked([response.text]) == []
    assert leaked([output]) == []


async def test_credentials_echoed_to_an_eval_stay_out_of_its_report(
    echoing: ServerThread, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    only_proxy(monkeypatch, "HTTP_PROXY", echoing.url.removeprefix("http://"))
    config_path, dataset, out = tmp_path / "moa.yaml", tmp_path / "items.jsonl", tmp_path / "out"
    config_path.write_text(yaml.safe_dump(config_data("http")))
    dataset.write_text(json.dumps({"id": "q", "prompt": "Why is the sky blue?"}) + "\n")
    argv = [
        "eval", "--config", str(config_path), "--dataset", str(dataset), "--candidate", "rejects",
        "--baseline", "fails", "--judge", "fails", "--out", str(out), "--quiet",
    ]  # fmt: skip

    with caplog.at_level(logging.DEBUG):
        report = await evaluate(build_parser().parse_args(argv))

    assert report["errors"] == 1
    assert "denied authorization=" in report["results"][0]["error"], "the echo reached the report, scrubbed"
    written_files = [(out / name).read_text() for name in ("report.json", "report.html")]
    assert leaked([json.dumps(report), *written_files]) == []
    assert leaked([caplog.text]) == []
