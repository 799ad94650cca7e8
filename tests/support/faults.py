"""The fault matrix's gateway config: every simulator fault, as a proposer and as an aggregator."""

from __future__ import annotations

from typing import Any

from moa_gateway.sim.core import FAULTS as SIMULATOR_FAULTS
from tests.support.configs import SIM_KEY

# Every simulator fault, and `refused` (nothing listens: a fault of the network, not the simulator).
FAULTS = [*SIMULATOR_FAULTS, "refused"]
OVERSIZE_BYTES = 1024 * 1024


def fault_config(sim_url: str) -> dict[str, Any]:
    """Pipelines `proposer-<fault>` and `aggregator-<fault>` over the simulator at `sim_url` (model
    `f-refused` points at a closed port), with short timeouts and quick retries."""
    fast_fail = {
        "timeout_s": 0.5,
        "idle_timeout_s": 0.3,
        "retries": {"max_attempts": 2, "base_delay_s": 0.01, "retry_after_cap_s": 0.05},
    }
    providers = {
        "sim": {"type": "openai", "base_url": f"{sim_url}/v1", "api_key": SIM_KEY, **fast_fail},
        "refused": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", **fast_fail},
    }
    models: dict[str, Any] = {name: {"provider": "sim"} for name in ["alpha", "beta", "omega"]}
    for fault in FAULTS:
        if fault == "refused":
            models[f"f-{fault}"] = {"provider": "refused"}
        else:
            simulate = {"fault": fault, "oversize_bytes": OVERSIZE_BYTES}
            models[f"f-{fault}"] = {"provider": "sim", "params": {"simulate": simulate}}
    pipelines: dict[str, Any] = {}
    for fault in FAULTS:
        pipelines[f"proposer-{fault}"] = {
            "layers": [{"proposers": ["alpha", "beta", f"f-{fault}"]}],
            "aggregator": "omega",
        }
        pipelines[f"aggregator-{fault}"] = {
            "layers": [{"proposers": ["alpha", "beta"]}],
            "aggregator": f"f-{fault}",
        }
    return {"providers": providers, "models": models, "pipelines": pipelines}
