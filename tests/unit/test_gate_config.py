"""A pipeline's `gate` in the config file: checked at start-up, each error naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from moa_gateway.config import ConfigError, parse_config
from moa_gateway.config.topology import catalogue_of
from moa_gateway.core.plan import Gate
from tests.support.configs import topology


def config_with(**gate: Any) -> dict[str, Any]:
    data = {"providers": {"sim": {"type": "simulated"}}, **topology("sim", layers=1)}
    data["pipelines"]["moa"]["gate"] = gate
    return data


def test_a_gate_reaches_the_pipelines_policy() -> None:
    data = config_with(model="gamma", confidence="self_report", threshold=0.7, audit_rate=0.1, judge="omega")
    policy = catalogue_of(parse_config(data, "test")).pipelines["moa"].policy

    assert policy.gate == Gate("gamma", "self_report", 3, 0.7)
    assert catalogue_of(parse_config(config_with(model="alpha"), "test")).pipelines[
        "moa"
    ].policy.gate == Gate("alpha", "agreement", 3, 0.8)


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        ({"model": "gpt"}, "pipelines.moa.gate.model: unknown model 'gpt'"),
        (
            {"model": "alpha", "audit_rate": 0.5, "judge": "gpt"},
            "pipelines.moa.gate.judge: unknown model 'gpt'",
        ),
        ({"model": "alpha", "audit_rate": 0.5}, "judge: needed when audit_rate > 0"),
        ({"model": "alpha", "samples": 1}, "samples: at least 2 for confidence: agreement"),
        ({"model": "alpha", "threshold": 1.5}, "pipelines.moa.gate.threshold"),
        ({"model": "alpha", "threshold": -0.1}, "pipelines.moa.gate.threshold"),
        ({"model": "alpha", "audit_rate": 2, "judge": "omega"}, "pipelines.moa.gate.audit_rate"),
        ({"model": "alpha", "confidence": "vibes"}, "pipelines.moa.gate.confidence"),
        ({"model": "alpha", "treshold": 0.5}, "pipelines.moa.gate.treshold: Extra inputs are not permitted"),
    ],
)
def test_a_bad_gate_stops_the_start_naming_the_field(gate: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(**gate), "test")

    assert expected in str(caught.value)


def test_self_report_needs_no_samples() -> None:
    config = parse_config(config_with(model="alpha", confidence="self_report", samples=1), "test")
    assert config.pipelines["moa"].gate is not None
