"""A gateway in front of a recording simulator, for the Responses and legacy Completions APIs: the
usual pipelines `moa` (2 layers) and `moa-1`, and `broken`, whose aggregator's stream is cut mid-way;
and a real `redis-server` on a free port for the Redis response store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from moa_gateway.config import parse_config
from moa_gateway.sim.core import SimProfile
from moa_gateway.sim.server import create_sim_app
from tests.support.configs import PROPOSERS, SIM_KEY, topology
from tests.support.gateways import serve_gateway
from tests.support.recording import Recorder
from tests.support.redis_server import redis_server
from tests.support.servers import ServerThread


@dataclass
class Gateway:
    url: str
    recorder: Recorder
    upstream_url: str

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


def responses_config(upstream_url: str) -> dict[str, object]:
    data = topology(
        "remote", extra_models={"cut": {"provider": "remote", "params": {"simulate": {"fault": "reset"}}}}
    )
    data["pipelines"]["broken"] = {"layers": [{"proposers": PROPOSERS}], "aggregator": "cut"}
    data["providers"] = {
        "remote": {
            "type": "openai",
            "base_url": upstream_url,
            "api_key": SIM_KEY,
            "timeout_s": 10,
            "retries": {"max_attempts": 1},
        }
    }
    return data


@pytest.fixture(scope="package")
def upstream() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder(create_sim_app(SimProfile(ttft_ms=1, tokens_per_s=0), api_key=SIM_KEY))
    with ServerThread(recorder) as server:
        yield f"{server.url}/v1", recorder


@pytest.fixture(scope="package")
def shared_gateway(upstream: tuple[str, Recorder]) -> Iterator[Gateway]:
    upstream_url, recorder = upstream
    config = parse_config(responses_config(upstream_url), "responses")
    with serve_gateway(config) as gateway:
        yield Gateway(gateway.url, recorder, upstream_url)


@pytest.fixture
def gateway(shared_gateway: Gateway) -> Gateway:
    """The shared gateway, its upstream's recording cleared for this test."""
    shared_gateway.recorder.clear()
    return shared_gateway


@pytest.fixture(scope="package")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url
