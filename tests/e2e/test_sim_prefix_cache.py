"""The simulator's prompt cache through the gateway and the openai SDK: a repeated long prompt reports
`usage.prompt_tokens_details.cached_tokens`, and the gateway prices those tokens at the model's
`cached_input_per_mtok`, over HTTP and with the in-process `type: simulated` provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from moa_gateway.sim.core import SimProfile
from moa_gateway.sim.server import create_sim_app
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread

PRICE = {"input_per_mtok": 10.0, "cached_input_per_mtok": 1.0, "output_per_mtok": 0.0}
LONG = [{"role": "user", "content": " ".join(f"w{i}" for i in range(1500))}]  # 1501 prompt tokens


@pytest.fixture(params=["openai", "simulated"])
def gateway_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with ServerThread(create_sim_app(SimProfile(ttft_ms=0, tokens_per_s=0))) as sim:
        provider: dict[str, Any] = (
            {"type": "openai", "base_url": f"{sim.url}/v1"}
            if request.param == "openai"
            else {"type": "simulated", "ttft_ms": 0, "tokens_per_s": 0}
        )
        data = {"providers": {"up": provider}, "models": {"cached": {"provider": "up", "price": PRICE}}}
        with serve_gateway(data) as gateway:
            yield f"{gateway.url}/v1"


def test_a_repeated_prompt_is_read_from_the_cache_and_priced_as_cached(gateway_url: str) -> None:
    with openai.OpenAI(base_url=gateway_url, api_key="unused", max_retries=0) as client:
        first = client.chat.completions.create(model="cached", messages=LONG)  # type: ignore[arg-type]
        second = client.chat.completions.create(model="cached", messages=LONG)  # type: ignore[arg-type]

    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens == second.usage.prompt_tokens == 1501
    assert first.usage.prompt_tokens_details is None
    assert second.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details.cached_tokens == 1408
    cost = [(r.model_extra or {})["moa"]["cost_usd"] for r in (first, second)]
    assert cost[0] == pytest.approx(1501 * 10.0 / 1e6)
    assert cost[1] == pytest.approx((93 * 10.0 + 1408 * 1.0) / 1e6)
    (call,) = (second.model_extra or {})["moa"]["calls"]
    assert call["cached_tokens"] == 1408
