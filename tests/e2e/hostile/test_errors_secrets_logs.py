"""Hardening, over real HTTP: every error response is one a client can act on, no configured secret
leaks even in part, and no client or upstream value can forge or flood a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from moa_gateway.config import parse_config
from moa_gateway.service.chat import ChatService
from moa_gateway.telemetry.logs import JsonFormatter, TextFormatter
from moa_gateway.upstream.secrets import redact
from tests.support.cli import free_port, serve, wait_ready
from tests.support.configs import simulated_config
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread

ASK: list[Any] = [{"role": "user", "content": "Hi"}]
API_KEY = "sk-live-Q7w3ZpL0x9VbN4mR2tYk8HcD"
HEADER_SECRET = "hdr-J5vT8nQ2wE6rY1uI"
URL_PASSWORD = "pw-K3mN7bV9cX2zL4"


def echoing_upstream() -> FastAPI:
    """A provider that echoes the credentials it received in its error text, as real ones sometimes do,
    padded so that any cut of the text at a fixed length would fall inside a credential."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        pad = "x" * int(body["model"].removeprefix("pad-"))
        seen = [request.headers.get("authorization", ""), request.headers.get("x-api-key", "")]
        seen.append(request.headers.get("x-echo-password", ""))
        message = f"{pad}invalid request for {' and '.join(seen)}; line one\nFAKE LOG LINE"
        return JSONResponse({"error": {"message": message}}, status_code=400)

    return app


@pytest.fixture(scope="module")
def echoing() -> Iterator[ServerThread]:
    with ServerThread(echoing_upstream()) as server:
        yield server


def echoing_config(url: str, pads: list[int]) -> dict[str, Any]:
    """Models `pad-N` behind a key and a secret header; `url-N` behind credentials in the base URL."""
    host = url.removeprefix("http://")
    keyed = {
        "type": "openai",
        "base_url": f"{url}/v1",
        "api_key": API_KEY,
        "headers": {"x-api-key": HEADER_SECRET},
        "retries": {"max_attempts": 1},
    }
    in_url = {
        "type": "openai",
        "base_url": f"http://user:{URL_PASSWORD}@{host}/v1",
        "headers": {"x-echo-password": URL_PASSWORD},
        "retries": {"max_attempts": 1},
    }
    models = {f"pad-{n}": {"provider": "keyed"} for n in pads}
    models |= {f"url-{n}": {"provider": "in_url", "name": f"pad-{n}"} for n in pads}
    return {"providers": {"keyed": keyed, "in_url": in_url}, "models": models}


def fragments(secret: str, size: int = 6) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def test_no_cut_of_an_upstream_error_leaves_part_of_a_secret(
    echoing: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    # Pads from 0 to 330 put every credential across the 200- and 300-character cuts of error texts.
    pads = list(range(0, 331, 7))
    config = parse_config(echoing_config(echoing.url, pads), "echo")
    seen: list[str] = []
    with (
        caplog.at_level(logging.DEBUG),
        serve_gateway(config) as gateway,
        httpx.Client(base_url=gateway.url, timeout=10) as client,
    ):
        for model in [f"{kind}-{pad}" for pad in pads for kind in ("pad", "url")]:
            response = client.post("/v1/chat/completions", json={"model": model, "messages": ASK})
            assert response.status_code == 400, response.text
            seen.append(response.text)

    assert any("[redacted]" in text for text in seen), "the provider's text was passed on, scrubbed"
    logged = caplog.text
    for secret in [API_KEY, HEADER_SECRET, URL_PASSWORD]:
        for fragment in fragments(secret):
            assert not any(fragment in text for text in seen), fragment
            assert fragment not in logged, fragment


@pytest.mark.parametrize("length", [4, 9, 20, 51, 120])
def test_redaction_comes_before_every_cut(length: int) -> None:
    secret = "".join("Kq7Zt3Wm9Xp"[i % 11] for i in range(length))
    text = f"provider says: bad key {secret} (request abc)"
    for cut in range(len(text) + 1):
        for piece in (text[:cut], text[cut:]):
            scrubbed = redact(piece, [secret])
            shortest = min(4, length)
            assert not any(f in scrubbed for f in fragments(secret, shortest)), (cut, scrubbed)
        limited = redact(text, [secret], limit=cut)
        assert not any(f in limited for f in fragments(secret, min(4, length))), (cut, limited)


def test_an_unexpected_failure_is_a_500_the_sdk_does_not_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    async def broken_run(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(ChatService, "complete", broken_run)
    with serve_gateway(simulated_config()) as gateway:
        raw = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "moa", "messages": ASK},
            headers={"x-request-id": "req-500-check"},
        )
        with (
            openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=2) as client,
            pytest.raises(openai.InternalServerError),
        ):
            client.chat.completions.create(model="moa", messages=ASK)

    assert raw.status_code == 500
    assert raw.json()["error"]["type"] == "server_error"
    assert "a bug of ours" not in raw.text
    assert raw.headers["x-request-id"] == "req-500-check"
    assert raw.headers["x-should-retry"] == "false"
    assert calls == 2, "the raw request, then the SDK's single attempt: no retries"


def test_every_error_status_carries_a_request_id_and_retry_advice() -> None:
    with (
        serve_gateway(simulated_config()) as gateway,
        httpx.Client(base_url=gateway.url, timeout=10) as client,
    ):
        responses = {
            "unknown url": client.get("/v1/nothing-here"),
            "wrong method": client.get("/v1/chat/completions"),
            "bad json": client.post("/v1/chat/completions", content=b"{"),
            "unknown model": client.post("/v1/chat/completions", json={"model": "gpt-9", "messages": ASK}),
        }
    for what, response in responses.items():
        assert response.status_code >= 400, what
        assert response.headers.get("x-request-id"), what
        assert response.headers.get("x-should-retry") == "false", what
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}, what


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_client_and_upstream_values_cannot_forge_or_flood_log_lines(
    echoing: ServerThread, tmp_path: Path, log_format: str
) -> None:
    config = tmp_path / "moa.yaml"
    config.write_text(
        f"providers:\n  echo: {{type: openai, base_url: '{echoing.url}/v1', retries: {{max_attempts: 1}}}}\n"
        "models:\n  pad-10: {provider: echo}\n"
    )
    port = free_port()
    process = serve(config, port, {"MOA_LOG_FORMAT": log_format, "MOA_LOG_LEVEL": "debug"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        forged = "x\n2026-11-25 13:00:00,000 ERROR app FORGED admin logged in\r\u2028FORGED again"
        huge = "m" * 3_000_000
        with httpx.Client(base_url=url, timeout=30) as client:
            statuses = [
                client.post("/v1/chat/completions", json={"model": forged, "messages": ASK}).status_code,
                client.post("/v1/chat/completions", json={"model": huge, "messages": ASK}).status_code,
                client.post("/v1/chat/completions", json={"model": "pad-10", "messages": ASK}).status_code,
                client.get(f"/v1/{'p' * 20000}").status_code,
            ]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)

    assert statuses[:3] == [404, 404, 400], statuses
    lines = output.splitlines()
    assert any("upstream_call" in line for line in lines), "the gateway logged the calls"
    assert "FORGED" in output, "the client's model was logged, escaped"
    forged_lines = [line for line in lines if line.startswith(("2026-11-25 13:00:00", "FORGED", "FAKE"))]
    assert not forged_lines
    assert max(len(line) for line in lines) <= 10_000, "no line carries a 3 MB value"


def make_record(message: str, args: tuple[Any, ...] = (), **fields: Any) -> logging.LogRecord:
    record = logging.LogRecord("moa_gateway.test", logging.INFO, __file__, 1, message, args, None)
    record.request_id = "r1"
    if fields:
        record.fields = fields
    return record


def test_formatters_escape_control_characters_and_cut_long_values() -> None:
    text = TextFormatter(value_chars=100)
    plain = text.format(make_record("error: %s", ("one\ntwo\x1b[31m",)))
    structured = text.format(make_record("", model="a\r\nb", error="e" * 1000))
    as_json = JsonFormatter(value_chars=100).format(make_record("", error="e" * 1000, model="a\nb"))

    assert "\n" not in plain and "one\\ntwo\\x1b[31m" in plain
    assert "\n" not in structured and "\r" not in structured and "model=a\\r\\nb" in structured
    assert "e" * 100 in structured and "e" * 101 not in structured
    assert "\n" not in as_json and "e" * 101 not in as_json and '"model":"a\\nb"' in as_json
