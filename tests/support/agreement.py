"""A gateway config over the simulator whose proposers agree in part (`simulate.agree`), whose
pipelines rank by peer review (`aggregation: rank`), one reviewer answering no ranking, and whose gates
report a confidence above or below their threshold (`simulate.confidence`)."""

from __future__ import annotations

from typing import Any

from tests.support.configs import SIM_KEY


def agreement_config(sim_url: str) -> dict[str, Any]:
    """Pipelines `panel` (alpha and beta agree, gamma dissents), `solo` (one proposer), `picked` (x, y,
    z ranked by each other, the best one selected) and `reviewed` (ranked by x, y, z and `grumpy`, whose
    ranking is malformed; the top 2 synthesized), `gated` (its gate `sure` reports 0.91, at least its
    threshold 0.8: its answer stands) and `escalated` (its gate `unsure` reports 0.4: the panel runs)."""
    price = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}

    def model(**simulate: Any) -> dict[str, Any]:
        return {"provider": "sim", "price": price, "params": {"simulate": simulate}}

    return {
        "providers": {
            "sim": {"type": "openai", "base_url": f"{sim_url}/v1", "api_key": SIM_KEY, "timeout_s": 10}
        },
        "models": {
            "alpha": model(agree=1),
            "beta": model(agree=1),
            "gamma": model(),  # its own answer: the dissent
            "x": model(),
            "y": model(),
            "z": model(),
            "grumpy": model(ranking="malformed"),
            "omega": model(),
            "sure": model(confidence=0.91),
            "unsure": model(confidence=0.4),
        },
        "pipelines": {
            "panel": {"layers": [{"proposers": ["alpha", "beta", "gamma"]}], "aggregator": "omega"},
            "solo": {"layers": [{"proposers": ["alpha"]}], "aggregator": "omega"},
            "picked": {
                "layers": [{"proposers": ["x", "y", "z"]}],
                "aggregator": "omega",
                "aggregation": "rank",
                "rank": {"then": "select"},
            },
            "reviewed": {
                "layers": [{"proposers": ["x", "y", "z"]}],
                "aggregator": "omega",
                "aggregation": "rank",
                "rank": {"reviewers": ["x", "y", "z", "grumpy"], "top_k": 2},
            },
            "gated": {**gate_of("sure"), "layers": [{"proposers": ["alpha", "beta"]}], "aggregator": "omega"},
            "escalated": {
                **gate_of("unsure"),
                "layers": [{"proposers": ["alpha", "beta"]}],
                "aggregator": "omega",
            },
        },
    }


def gate_of(model: str) -> dict[str, Any]:
    return {"gate": {"model": model, "confidence": "self_report", "threshold": 0.8}}
