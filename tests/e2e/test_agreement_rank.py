"""Agreement in every answer and peer-ranked aggregation, through a real gateway in front of the real
simulator (its proposers told how much to agree, its reviewers ranking), read by the official openai SDK:
`moa.agreement` in JSON, in the stream's final chunk and as a live event, the `moa_agreement` metric and
span event, `moa.rankings` and the reviewers' calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from moa_gateway.telemetry.tracing import Tracing
from tests.support.agreement import agreement_config
from tests.support.asks import ASK
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape
from tests.support.servers import ServerThread

AGREEMENT = {"score": 0.667, "method": "normalized", "layer": 1, "proposals": 3, "dissent": ["gamma"]}


class Gateway:
    def __init__(self, server: ServerThread, spans: InMemorySpanExporter) -> None:
        self.url, self.spans = server.url, spans

    def scrape(self) -> Scrape:
        return Scrape(httpx.get(f"{self.url}/metrics", timeout=10).text)


@pytest.fixture(scope="module")
def gateway(sim_server: ServerThread) -> Iterator[Gateway]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with serve_gateway(agreement_config(sim_server.url), tracing=Tracing(provider)) as server:
        yield Gateway(server, exporter)


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as c:
        yield c


def moa_of(response: Any) -> dict[str, Any]:
    extra = response.model_extra or {}
    moa = extra["moa"]
    assert isinstance(moa, dict)
    return moa


def test_a_json_answer_says_how_far_the_proposers_agreed_and_who_dissented(client: openai.OpenAI) -> None:
    panel = client.chat.completions.create(model="panel", messages=ASK)
    solo = client.chat.completions.create(model="solo", messages=ASK)
    direct = client.chat.completions.create(model="gamma", messages=ASK)

    assert moa_of(panel)["agreement"] == AGREEMENT
    assert moa_of(solo)["agreement"] is None  # one proposal: nothing to agree
    assert "agreement" not in moa_of(direct)  # no pipeline at all


def test_a_stream_carries_agreement_in_its_final_chunk_and_as_a_live_event(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="panel",
            messages=ASK,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"moa": {"stream_events": True}},
        )
    )

    assert moa_of(chunks[-1])["agreement"] == AGREEMENT
    events = [e for c in chunks for e in (c.model_extra or {}).get("moa_events", [])]
    live = [e for e in events if e["type"] == "agreement"]
    assert live == [{"type": "agreement", **AGREEMENT}]
    kinds = [e["type"] for e in events]
    aggregator = next(i for i, e in enumerate(events) if e.get("role") == "aggregator")
    assert kinds.index("layer.finished") < kinds.index("agreement") < aggregator


def test_agreement_is_a_metric_per_pipeline_and_an_evaluation_event_on_the_span(
    gateway: Gateway, client: openai.OpenAI
) -> None:
    before = gateway.scrape()
    gateway.spans.clear()

    client.chat.completions.create(model="panel", messages=ASK)
    client.chat.completions.create(model="solo", messages=ASK)

    after = gateway.scrape()

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("moa_agreement_count", pipeline="panel") == 1
    assert delta("moa_agreement_bucket", pipeline="panel", le="0.6") == 0
    assert delta("moa_agreement_bucket", pipeline="panel", le="0.7") == 1
    assert delta("moa_agreement_count", pipeline="solo") == 0  # not measured, not observed
    workflows = {s.name: s for s in gateway.spans.get_finished_spans() if s.name.startswith("invoke")}
    (event,) = [e for e in workflows["invoke_workflow panel"].events if e.name == "gen_ai.evaluation.result"]
    attributes = dict(event.attributes or {})
    assert attributes["gen_ai.evaluation.name"] == "moa.agreement"
    assert attributes["gen_ai.evaluation.score.value"] == 0.667
    assert attributes["gen_ai.evaluation.score.label"] == "majority"
    assert "2 of 3 proposals of layer 1" in str(attributes["gen_ai.evaluation.explanation"])
    assert attributes["moa.agreement.dissent"] == ("gamma",)
    assert not [e for e in workflows["invoke_workflow solo"].events if e.name == "gen_ai.evaluation.result"]


def test_rank_then_select_answers_with_the_top_proposal_verbatim(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="picked", messages=ASK, extra_body={"moa": {"include_proposals": True}}
    )

    moa = moa_of(response)
    rankings = moa["rankings"]
    assert (rankings["reviewers"], rankings["counted"], rankings["dropped"]) == (3, 3, [])
    assert (rankings["then"], [p["rank"] for p in rankings["proposals"]]) == ("select", [1, 2, 3])
    # three reviewers, each ranking the other two: 2 + 1 points per ranking, 9 in all
    assert sum(p["points"] for p in rankings["proposals"]) == 9
    top = rankings["proposals"][0]
    proposals = [c for c in moa["calls"] if c["role"] == "proposer"]
    assert response.choices[0].message.content == proposals[top["proposal"]]["text"]
    assert moa["answered_by"] == top["model"]
    reviewers = [c for c in moa["calls"] if c["role"] == "reviewer"]
    assert sorted(c["model"] for c in reviewers) == ["x", "y", "z"]
    assert all(c["status"] == "ok" and c["cost_usd"] > 0 for c in reviewers)
    assert not [c for c in moa["calls"] if c["role"] == "aggregator"]
    assert moa["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in moa["calls"]))


def test_rank_drops_a_malformed_ranking_and_synthesizes_from_the_top_k(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model="reviewed", messages=ASK)

    moa = moa_of(response)
    rankings = moa["rankings"]
    assert (rankings["reviewers"], rankings["counted"]) == (4, 3)
    assert rankings["dropped"] == [
        {"reviewer": "grumpy", "reason": "malformed ranking: no ranking in its answer"}
    ]
    assert (rankings["then"], rankings["top_k"]) == ("synthesize", 2)
    assert [c["role"] for c in moa["calls"]] == ["proposer"] * 3 + ["reviewer"] * 4 + ["aggregator"]
    content = response.choices[0].message.content or ""
    assert content.startswith("[omega] Synthesis of 2 responses")
    best_two = [p["model"] for p in rankings["proposals"][:2]]
    assert all(f"({i}) {model}:" in content for i, model in enumerate(best_two, 1))  # best first
