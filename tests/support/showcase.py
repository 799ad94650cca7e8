"""A gateway config over the simulator that shows every kind of call: a 2-layer pipeline, a pipeline where
one proposer fails and another falls back, and priced models (for live events and the playground)."""

from __future__ import annotations

from typing import Any

from moa_gateway.config import GatewayConfig, parse_config
from tests.support.configs import SIM_KEY


def showcase_config(sim_url: str, *, auth_digests: list[str] | None = None) -> GatewayConfig:
    """Pipelines `moa` (2 layers of alpha, beta, gamma; aggregator omega), `shaky` (one layer of alpha,
    `broken`, which fails and falls back to gamma, and `flaky`, which fails and is dropped), and `tripped`
    (alpha and `fragile`, whose circuit opens at its first failure: skipped from the second run on)."""
    provider = {
        "type": "openai",
        "base_url": f"{sim_url}/v1",
        "api_key": SIM_KEY,
        "timeout_s": 5,
        "retries": {"max_attempts": 1},
    }
    failing = {"simulate": {"fault": "error_500"}}
    models: dict[str, Any] = {
        name: {"provider": "sim", "price": {"input_per_mtok": 1.0 + i, "output_per_mtok": 2.0 + i}}
        for i, name in enumerate(["alpha", "beta", "gamma", "omega"])
    }
    models["broken"] = {"provider": "sim", "params": failing, "fallbacks": ["gamma"]}
    models["flaky"] = {"provider": "sim", "params": failing}
    breaker = {"failure_threshold": 1, "cooldown_s": 600}
    models["fragile"] = {"provider": "sim", "params": failing, "circuit_breaker": breaker}
    data: dict[str, Any] = {
        "providers": {"sim": provider},
        "models": models,
        "pipelines": {
            "moa": {"layers": [{"proposers": ["alpha", "beta", "gamma"]}] * 2, "aggregator": "omega"},
            "shaky": {"layers": [{"proposers": ["alpha", "broken", "flaky"]}], "aggregator": "omega"},
            "tripped": {"layers": [{"proposers": ["alpha", "fragile"]}], "aggregator": "omega"},
        },
    }
    if auth_digests:
        data["auth"] = {"api_key_sha256": auth_digests}
    return parse_config(data, "showcase")
