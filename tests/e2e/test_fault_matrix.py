"""The fault matrix: every simulator fault, in a proposer or in the aggregator, streamed or not, through
real HTTP (gateway and simulator under uvicorn). Each cell ends in its documented outcome, fast: the
client's own 10 s timeout would fail any hung cell, and the gateway never answers 500.

EXPECTED is the table docs/operations/reliability.md shows (a test below keeps the two in step).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from moa_gateway.config import parse_config
from moa_gateway.settings import Settings
from tests.support.asks import ASK
from tests.support.configs import SIM_KEY
from tests.support.faults import FAULTS, fault_config
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread

# fault -> (proposer outcome, aggregator non-streamed, aggregator streamed)
# "dropped": 200, the layer goes on without it; "NNN": that status as JSON before any byte;
# "200+NNN": the stream had started, the error comes in-band, then [DONE].
EXPECTED: dict[str, tuple[str, str, str]] = {
    "hang": ("dropped (timeout)", "504", "504"),
    "error_500": ("dropped (server_error, retried)", "502", "502"),
    "error_503": ("dropped (server_error, retried)", "502", "502"),
    "rate_limit": ("dropped (rate_limited, retried after Retry-After)", "502", "502"),
    "refused": ("dropped (connection, retried)", "502", "502"),
    "reset": ("dropped (connection, retried)", "502", "200+502"),
    "non_json": ("dropped (bad_response)", "502", "502"),
    "empty_choices": ("dropped (bad_response)", "502", "502"),
    "trickle": ("dropped (timeout)", "504", "200+504"),
    "malformed_usage": ("dropped (bad_response)", "502", "200+502"),
    "oversized_body": ("dropped (bad_response)", "502", "200+502"),
    "truncated_stream": ("dropped (bad_response)", "502", "200+502"),
    "endless_trickle": ("dropped (timeout)", "504", "200+504"),
}
# Small answer limits keep the oversized cells fast; the simulator's oversized answer is 1 MiB.
LIMITS: dict[str, Any] = {
    "upstream_max_body_bytes": 64 * 1024,
    "upstream_max_event_bytes": 16 * 1024,
    "upstream_max_stream_bytes": 256 * 1024,
}
RELIABILITY_PAGE = Path(__file__).resolve().parents[2] / "docs" / "operations" / "reliability.md"


@pytest.fixture(scope="module")
def gateway(sim_server: ServerThread) -> Iterator[ServerThread]:
    config = parse_config(fault_config(sim_server.url), "fault-matrix")
    with serve_gateway(config, Settings(**LIMITS)) as server:
        yield server


def post(gateway: ServerThread, model: str, stream: bool) -> tuple[int, str]:
    body = {"model": model, "messages": ASK, "stream": stream, "stream_options": {"include_usage": True}}
    if not stream:
        body.pop("stream_options")
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=10)
    return response.status_code, response.text


def sse_payloads(text: str) -> list[str]:
    return [block.removeprefix("data: ") for block in text.split("\n\n") if block.startswith("data: ")]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", FAULTS)
def test_a_faulty_proposer_is_dropped(gateway: ServerThread, fault: str, stream: bool) -> None:
    status, text = post(gateway, f"proposer-{fault}", stream)

    assert status == 200, text
    if stream:
        payloads = sse_payloads(text)
        assert payloads[-1] == "[DONE]"
        moa = json.loads(payloads[-2])["moa"]
    else:
        moa = json.loads(text)["moa"]
    assert moa["dropped"] == [f"f-{fault}"]
    failed = [c for c in moa["calls"] if c["model"] == f"f-{fault}"]
    assert len(failed) == 1 and failed[0]["status"] == "error"
    assert failed[0]["error"].startswith(f"model f-{fault}: ")
    assert [c["model"] for c in moa["calls"] if c["status"] == "ok"] == ["alpha", "beta", "omega"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", FAULTS)
def test_a_faulty_aggregator_fails_as_documented(gateway: ServerThread, fault: str, stream: bool) -> None:
    expected = EXPECTED[fault][2 if stream else 1]

    status, text = post(gateway, f"aggregator-{fault}", stream)

    if expected.startswith("200+"):
        assert status == 200
        payloads = sse_payloads(text)
        assert payloads[-1] == "[DONE]"
        assert any('"content":' in p and '"role"' not in p for p in payloads), (
            "tokens came before the failure"
        )
        error = json.loads(payloads[-2])["error"]
        assert error["code"] == ("upstream_timeout" if expected.endswith("504") else "upstream_error")
    else:
        assert status == int(expected), text
        error = json.loads(text)["error"]
        assert set(error) == {"message", "type", "param", "code"}
    assert error["message"].startswith(f"model f-{fault}: ")
    assert SIM_KEY not in text


def test_the_docs_show_this_matrix() -> None:
    rows = {}
    for line in RELIABILITY_PAGE.read_text().splitlines():
        match = re.match(r"^\| `(\w+)` \| (.+?) \| (.+?) \| (.+?) \|", line)
        if match and match.group(1) in EXPECTED:
            rows[match.group(1)] = (match.group(2), match.group(3), match.group(4))

    def render(cell: str) -> str:
        return (
            cell
            if not cell[0].isdigit()
            else f"{cell}: in-band error after the first tokens"
            if "+" in cell
            else f"{cell} JSON error"
        )

    assert rows == {fault: tuple(render(c) for c in cells) for fault, cells in EXPECTED.items()}
