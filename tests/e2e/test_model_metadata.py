"""What clients read from `/v1/models` to size and price requests, through the openai SDK against a real
gateway in front of the simulator: context windows, output caps and per-token prices for aliases; for
pipelines the smallest window on their path and their topology."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from moa_gateway.config import parse_config
from tests.support.configs import SIM_KEY
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread


def _config(base_url: str) -> Any:
    def model(window: int | None, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"provider": "remote", **extra}
        if window is not None:
            body["context_window"] = window
        return body

    return parse_config(
        {
            "providers": {"remote": {"type": "openai", "base_url": base_url, "api_key": SIM_KEY}},
            "models": {
                "alpha": model(
                    128_000,
                    params={"max_tokens": 4096},
                    price={"input_per_mtok": 1.2, "output_per_mtok": 4.8, "cached_input_per_mtok": 0.3},
                ),
                "beta": model(
                    32_000, price={"input_per_mtok": 0.6, "output_per_mtok": 0.6}, fallbacks=["tiny"]
                ),
                "tiny": model(8_192, price={"input_per_mtok": 0.1, "output_per_mtok": 0.2}),
                "omega": model(
                    64_000,
                    params={"max_completion_tokens": 2048},
                    price={"input_per_mtok": 3, "output_per_mtok": 15},
                ),
                "wide": model(200_000, price={"input_per_mtok": 1, "output_per_mtok": 1}),
                "judge": model(None, purpose="judge"),  # no window configured, no price
            },
            "pipelines": {
                # beta falls back to tiny (8k): the smallest window a request may meet on this path
                "moa": {
                    "layers": [{"proposers": ["alpha", "beta"]}, {"proposers": ["alpha"]}],
                    "aggregator": "omega",
                },
                "wide-only": {"layers": [{"proposers": ["wide"]}], "aggregator": "alpha"},
                "escalating": {
                    "layers": [{"proposers": ["wide"]}],
                    "aggregator": "wide",
                    "early_exit": {"escalate_to": "omega"},
                },
                "blind": {"layers": [{"proposers": ["judge"]}], "aggregator": "judge"},
            },
        },
        "test",
    )


@pytest.fixture(scope="module")
def client(sim_server: ServerThread) -> Iterator[openai.OpenAI]:
    with (
        serve_gateway(_config(f"{sim_server.url}/v1")) as server,
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="x") as sdk,
    ):
        yield sdk


def _listed(client: openai.OpenAI) -> dict[str, dict[str, Any]]:
    return {m.id: m.model_extra or {} for m in client.models.list()}


def test_aliases_carry_their_window_output_cap_and_prices_per_token(client: openai.OpenAI) -> None:
    alpha = _listed(client)["alpha"]

    assert alpha["context_length"] == 128_000 and alpha["max_completion_tokens"] == 4096
    assert alpha["top_provider"] == {
        "context_length": 128_000,
        "max_completion_tokens": 4096,
        "is_moderated": False,
    }
    # OpenRouter's shape: strings of USD per token, exact
    assert alpha["pricing"] == {
        "prompt": "0.0000012",
        "completion": "0.0000048",
        "input_cache_read": "0.0000003",
    }
    omega = client.models.retrieve("omega").model_extra or {}
    assert omega["max_completion_tokens"] == 2048 and omega["pricing"] == {
        "prompt": "0.000003",
        "completion": "0.000015",
    }


def test_a_pipeline_has_the_smallest_window_on_its_path_and_its_topology(client: openai.OpenAI) -> None:
    listed = _listed(client)

    assert listed["moa"]["context_length"] == 8_192, "beta's fallback tiny is on the path"
    assert listed["moa"]["max_completion_tokens"] == 2048, "the aggregator's cap"
    assert listed["moa"]["moa"] == {
        "layers": [["alpha", "beta"], ["alpha"]],
        "aggregator": "omega",
        "aggregator_fallbacks": [],
        "aggregation": "synthesize",
    }
    assert listed["wide-only"]["context_length"] == 128_000, "the aggregator alpha reads it too"
    assert listed["escalating"]["context_length"] == 64_000, "the model escalated to reads it too"
    assert "pricing" not in listed["moa"]


def test_every_id_has_a_context_length_null_only_when_no_model_on_its_path_has_one(
    client: openai.OpenAI,
) -> None:
    listed = _listed(client)

    assert all("context_length" in body for body in listed.values())
    assert {mid for mid, body in listed.items() if body["context_length"] is None} == {"judge", "blind"}
    judge = listed["judge"]
    assert judge["pricing"] == {"prompt": "0", "completion": "0"}, "unpriced: counted as free"
    assert judge["moa"] == {"purpose": "judge"} and listed["alpha"]["moa"] == {"purpose": "chat"}
