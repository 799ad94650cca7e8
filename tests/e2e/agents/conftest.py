"""A gateway in front of a recording simulator, with pipelines for agent features: tools, structured
outputs, reasoning models, text-only models. Shared by the client-library tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from moa_gateway.config import parse_config
from moa_gateway.sim.core import SimProfile
from moa_gateway.sim.server import create_sim_app
from tests.support.configs import SIM_KEY, topology
from tests.support.gateways import serve_gateway
from tests.support.recording import Recorder
from tests.support.servers import ServerThread

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
PROPOSERS = ["alpha", "beta", "gamma"]


def agent_config(upstream_url: str) -> dict[str, Any]:
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
    data["providers"] = {
        "remote": {"type": "openai", "base_url": upstream_url, "api_key": SIM_KEY, "timeout_s": 10}
    }
    return data


@dataclass
class AgentGateway:
    url: str
    recorder: Recorder

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


@pytest.fixture(scope="package")
def agent_gateway() -> Iterator[AgentGateway]:
    recorder = Recorder(create_sim_app(SimProfile(ttft_ms=1, tokens_per_s=0), api_key=SIM_KEY))
    with ServerThread(recorder) as upstream:
        config = parse_config(agent_config(f"{upstream.url}/v1"), "agents")
        with serve_gateway(config) as gateway:
            yield AgentGateway(gateway.url, recorder)


@pytest.fixture
def gateway(agent_gateway: AgentGateway) -> AgentGateway:
    """The shared gateway, its recording cleared for this test."""
    agent_gateway.recorder.clear()
    return agent_gateway
