"""Keys never leak: the whole fault suite runs with an upstream key and gateway keys set, and every log
line and every response (bodies and headers, /metrics, /v1/models, /readyz) is searched for them."""

from __future__ import annotations

import logging

import httpx
import pytest
from pydantic import SecretStr

from moa_gateway.config import parse_config
from moa_gateway.settings import Settings
from tests.support.configs import SIM_KEY
from tests.support.faults import FAULTS, fault_config
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread

GATEWAY_KEY = "gw-key-4b1d9e0c7a"


def test_no_key_appears_in_logs_or_responses(
    sim_server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    config = parse_config(fault_config(sim_server.url), "secrets")
    settings = Settings(api_keys=SecretStr(f"other-key,{GATEWAY_KEY}"))
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG), serve_gateway(config, settings) as gateway:
        auth = {"authorization": f"Bearer {GATEWAY_KEY}"}
        with httpx.Client(base_url=gateway.url, headers=auth, timeout=10) as client:
            for fault in FAULTS:
                for role in ["proposer", "aggregator"]:
                    for stream in [False, True]:
                        body = {
                            "model": f"{role}-{fault}",
                            "stream": stream,
                            "messages": [{"role": "user", "content": "hi"}],
                        }
                        response = client.post("/v1/chat/completions", json=body)
                        seen += [response.text, str(response.headers)]
            for path in ["/v1/models", "/metrics", "/readyz"]:
                response = client.get(path)
                seen += [response.text, str(response.headers)]
            refused = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                headers={"authorization": f"Bearer {GATEWAY_KEY}x"},
                json={},
            )
            seen += [refused.text, str(refused.headers)]

    assert refused.status_code == 401
    logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert "upstream_call" in logged and "request" in logged, "the logs were captured"
    for secret in [SIM_KEY, GATEWAY_KEY, "other-key"]:
        assert secret not in logged
        assert all(secret not in text for text in seen)
