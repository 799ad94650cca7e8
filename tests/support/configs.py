"""Gateway configs over the simulator: in-process (`simulated_config`) or through HTTP (`http_config`)."""

from __future__ import annotations

from typing import Any

from moa_gateway.config import GatewayConfig, parse_config

SIM_KEY = "sk-sim-test-0123456789abcdef"
PROPOSERS = ["alpha", "beta", "gamma"]


def topology(provider: str, *, layers: int = 2, extra_models: dict[str, Any] | None = None) -> dict[str, Any]:
    """Models alpha/beta/gamma/omega on `provider`, with prices, and pipelines `moa` and `moa-1`."""
    models: dict[str, Any] = {
        name: {"provider": provider, "price": {"input_per_mtok": 1.0 + i, "output_per_mtok": 2.0 + i}}
        for i, name in enumerate([*PROPOSERS, "omega"])
    }
    models.update(extra_models or {})
    return {
        "models": models,
        "pipelines": {
            "moa": {"layers": [{"proposers": PROPOSERS}] * layers, "aggregator": "omega"},
            "moa-1": {"layers": [{"proposers": PROPOSERS}], "aggregator": "omega"},
        },
    }


def simulated_config(ttft_ms: float = 0, tokens_per_s: float = 0, **kwargs: Any) -> GatewayConfig:
    data = {
        "providers": {"sim": {"type": "simulated", "ttft_ms": ttft_ms, "tokens_per_s": tokens_per_s}},
        **topology("sim", **kwargs),
    }
    return parse_config(data, "test")


def remote_provider(base_url: str, api_key: str = SIM_KEY, **options: Any) -> dict[str, Any]:
    """An `openai` provider at `base_url` (the simulator's `/v1`, say) with a 10 s timeout, and `options`."""
    return {"type": "openai", "base_url": base_url, "api_key": api_key, "timeout_s": 10, **options}


def http_config(base_url: str, api_key: str = SIM_KEY, **kwargs: Any) -> GatewayConfig:
    data = {"providers": {"remote": remote_provider(base_url, api_key)}, **topology("remote", **kwargs)}
    return parse_config(data, "test")
