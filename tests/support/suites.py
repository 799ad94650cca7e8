"""The gateway configs of the e2e suites that share one gateway per folder, each in front of a recording
simulator at `upstream_url`: agents (tests/e2e/agents), Responses and Completions (tests/e2e/responses),
client libraries (tests/e2e/clients)."""

from __future__ import annotations

from typing import Any

from tests.support.configs import PROPOSERS, remote_provider, topology

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


def agent_config(upstream_url: str) -> dict[str, Any]:
    """Pipelines for agent features: tools (`bypass`), reasoning (`thinking`), text-only models
    (`mixed-media`), structured outputs repaired once (`sloppy-json`) or never (`hopeless-json`), and a
    tool loop run once per user turn (`per-turn`)."""
    data = topology("remote", layers=1)
    remote = {"provider": "remote"}
    data["models"].update(
        {
            "reasoner": {**remote, "params": {"simulate": {"reasoning": True}}},
            "thinker": {**remote, "params": {"simulate": {"think_tags": True}}},
            "texty": {**remote, "modalities": ["text"]},
            "sloppy": {
                **remote,
                "params": {"simulate": {"fault": "schema_invalid", "fault_key": "once", "fault_count": 1}},
            },
            "hopeless": {**remote, "params": {"simulate": {"fault": "schema_invalid"}}},
            # an agent that calls its tool three times a user turn, then answers
            "looper": {**remote, "params": {"simulate": {"tool_rounds": 3}}},
        }
    )
    data["pipelines"].update(
        {
            "bypass": {"layers": [{"proposers": PROPOSERS}], "aggregator": "omega", "tools_mode": "bypass"},
            "thinking": {"layers": [{"proposers": ["thinker", "alpha"]}], "aggregator": "reasoner"},
            "mixed-media": {"layers": [{"proposers": ["texty", "alpha"]}], "aggregator": "omega"},
            "sloppy-json": {"layers": [{"proposers": ["alpha", "beta"]}], "aggregator": "sloppy"},
            "hopeless-json": {"layers": [{"proposers": ["alpha", "beta"]}], "aggregator": "hopeless"},
            "per-turn": {
                "layers": [{"proposers": PROPOSERS}],
                "aggregator": "looper",
                "fanout": "user_turn",
                "references": "before_last_user",
            },
        }
    )
    data["providers"] = {"remote": remote_provider(upstream_url)}
    return data


def responses_config(upstream_url: str) -> dict[str, Any]:
    """The usual pipelines `moa` (2 layers) and `moa-1`, and `broken`, whose aggregator's stream is cut
    mid-way; one attempt per call."""
    data = topology(
        "remote", extra_models={"cut": {"provider": "remote", "params": {"simulate": {"fault": "reset"}}}}
    )
    data["pipelines"]["broken"] = {"layers": [{"proposers": PROPOSERS}], "aggregator": "cut"}
    data["providers"] = {"remote": remote_provider(upstream_url, retries={"max_attempts": 1})}
    return data


def clients_config(upstream_url: str) -> dict[str, Any]:
    """The usual pipelines, `reasoning` (a 1-layer pipeline whose aggregator reasons) and the `reasoner`
    alias."""
    reasoner = {"provider": "remote", "params": {"simulate": {"reasoning": True}}}
    data = topology("remote", extra_models={"reasoner": reasoner})
    data["pipelines"]["reasoning"] = {"layers": [{"proposers": PROPOSERS}], "aggregator": "reasoner"}
    data["providers"] = {"remote": remote_provider(upstream_url)}
    return data
