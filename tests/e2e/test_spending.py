"""Spending only where it buys quality, over real HTTP: early exit on agreement (and escalation), cost
budgets, context fitting, and the select / sequential / Self-MoA aggregation strategies. A recording
upstream shows which calls were made and what each received."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.asks import ASK_CAPITAL
from tests.support.configs import remote_provider
from tests.support.gateways import Gateway, recording_upstream, serve_gateway
from tests.support.metrics import Scrape


def fixed(answer: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "up", "params": {"simulate": {"answer": answer}}, **extra}


def price(input_per_mtok: float, output_per_mtok: float) -> dict[str, float]:
    return {"input_per_mtok": input_per_mtok, "output_per_mtok": output_per_mtok}


def spending_config(upstream_url: str) -> dict[str, Any]:
    up = {"provider": "up"}
    models: dict[str, Any] = {
        "paris-a": fixed("Paris."),
        "paris-b": fixed("paris"),
        "paris-c": fixed("  PARIS!  "),
        "lyon": fixed("Lyon, I think."),
        "near-a": fixed("The capital of France is Paris, a large city"),
        "near-b": fixed("the capital of France is Paris, the large city"),
        "agg": up,
        "strong": up,
        "picker": fixed("Having compared them, [[2]] is best."),
        "dithering": fixed("They are all fine."),
        "cheap": {**up, "price": price(1, 1)},
        "pricey": {**up, "price": price(100, 100)},
        "mid": {**up, "price": price(10, 10)},
        "narrow": {**up, "context_window": 40},
        "small-agg": {**up, "context_window": 400, "params": {"simulate": {"context_window": 400}}},
        "verbose": fixed("word " * 300),
        "sampled": {**up, "params": {"temperature": 0}},
    }
    three_agreeing = ["paris-a", "paris-b", "paris-c"]
    return {
        "providers": {"up": remote_provider(upstream_url)},
        "models": models,
        "pipelines": {
            "agree": {"layers": [{"proposers": three_agreeing}] * 2, "aggregator": "agg", "early_exit": {}},
            "split": {
                "layers": [{"proposers": [*three_agreeing, "lyon"]}],
                "aggregator": "agg",
                "early_exit": {},
            },
            "majority": {
                "layers": [{"proposers": [*three_agreeing, "lyon"]}],
                "aggregator": "agg",
                "early_exit": {"agreement": 0.75},
            },
            "similar": {
                "layers": [{"proposers": ["near-a", "near-b"]}],
                "aggregator": "agg",
                "early_exit": {"match": "similarity", "similarity": 0.7},
            },
            "escalating": {
                "layers": [{"proposers": ["paris-a", "paris-b"]}],
                "aggregator": "agg",
                "early_exit": {"escalate_to": "strong"},
            },
            "escalating-split": {
                "layers": [{"proposers": ["paris-a", "lyon"]}],
                "aggregator": "agg",
                "early_exit": {"escalate_to": "strong"},
            },
            "escalating-priced": {
                "layers": [{"proposers": ["cheap", "mid"]}],
                "aggregator": "cheap",
                "early_exit": {"escalate_to": "pricey"},
            },
            "priced": {"layers": [{"proposers": ["cheap", "pricey", "mid"]}], "aggregator": "cheap"},
            "priced-quorum": {
                "layers": [{"proposers": ["cheap", "pricey", "mid"], "min_proposers": 3}],
                "aggregator": "cheap",
            },
            "budgeted": {
                "layers": [{"proposers": ["cheap", "pricey", "mid"]}],
                "aggregator": "cheap",
                "max_cost_usd": 0.02,
            },
            "capped": {
                "layers": [{"proposers": ["cheap", "mid"]}],
                "aggregator": "cheap",
                "reference_max_tokens": 64,
            },
            "windowed": {"layers": [{"proposers": ["narrow", "paris-a"]}], "aggregator": "agg"},
            "fitting": {"layers": [{"proposers": ["verbose", "paris-a"]}], "aggregator": "small-agg"},
            "selecting": {
                "layers": [{"proposers": ["paris-a", "lyon", "paris-b"]}],
                "aggregator": "picker",
                "aggregation": "select",
            },
            "select-fallback": {
                "layers": [{"proposers": ["paris-a", "lyon"]}],
                "aggregator": "dithering",
                "aggregation": "select",
            },
            "sequential": {
                "layers": [{"proposers": ["paris-a", "paris-b", "paris-c", "lyon", "near-a"]}],
                "aggregator": "agg",
                "aggregation": "sequential",
                "window": 2,
            },
            "self-moa": {"layers": [{"proposers": ["sampled", "sampled", "sampled"]}], "aggregator": "agg"},
        },
    }


class Spend(Gateway):
    def post(self, model: str, **body: Any) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            json={"model": model, "messages": ASK_CAPITAL, **body},
            timeout=10,
        )

    def called(self) -> list[str]:
        return [b["model"] for b in self.recorder.bodies()]


@pytest.fixture(scope="module")
def spend_servers() -> Iterator[Spend]:
    with (
        recording_upstream() as (upstream_url, recorder),
        serve_gateway(spending_config(upstream_url)) as gateway,
    ):
        yield Spend(gateway.url, recorder)


@pytest.fixture
def spend(spend_servers: Spend) -> Spend:
    spend_servers.recorder.clear()
    return spend_servers


def test_agreeing_proposers_skip_the_remaining_layers_and_the_aggregator(spend: Spend) -> None:
    response = spend.post("agree")

    body = response.json()
    assert response.status_code == 200
    assert body["choices"][0]["message"]["content"] == "Paris."
    assert sorted(spend.called()) == ["paris-a", "paris-b", "paris-c"], (
        "layer 2 and the aggregator not called"
    )
    moa = body["moa"]
    assert moa["early_exit"] == {"layer": 1, "agreement": 1.0, "skipped": "aggregator", "escalated": False}
    assert moa["answered_by"] == "paris-a"
    scrape = Scrape(httpx.get(f"{spend.url}/metrics").text)
    assert scrape.value("moa_early_exits_total", pipeline="agree", skipped="aggregator") >= 1
    assert scrape.value("moa_calls_saved_total", pipeline="agree", reason="early_exit") >= 4


def test_an_early_exit_streams_the_agreed_answer(spend: Spend) -> None:
    with httpx.stream(
        "POST",
        f"{spend.url}/v1/chat/completions",
        json={
            "model": "agree",
            "messages": ASK_CAPITAL,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        timeout=10,
    ) as response:
        text = response.read().decode()

    assert '"content":"Paris."' in text and text.rstrip().endswith("data: [DONE]")
    assert '"skipped":"aggregator"' in text


def test_disagreeing_proposers_go_on_to_the_aggregator(spend: Spend) -> None:
    body = spend.post("split").json()

    assert "early_exit" not in body["moa"]
    assert spend.called().count("agg") == 1


def test_a_majority_is_enough_when_agreement_is_below_one(spend: Spend) -> None:
    body = spend.post("majority").json()

    assert body["moa"]["early_exit"]["agreement"] == 0.75
    assert "agg" not in spend.called()


def test_similarity_matching_counts_near_identical_answers(spend: Spend) -> None:
    body = spend.post("similar").json()

    assert body["moa"]["early_exit"]["skipped"] == "aggregator"
    assert "agg" not in spend.called()


def test_escalation_calls_the_strong_model_only_on_disagreement(spend: Spend) -> None:
    agreed = spend.post("escalating").json()
    assert spend.called().count("agg") == 1 and "strong" not in spend.called()
    assert agreed["moa"]["early_exit"]["escalated"] is False

    spend.recorder.clear()
    split = spend.post("escalating-split").json()
    assert spend.called().count("strong") == 1 and "agg" not in spend.called()
    assert split["moa"]["answered_by"] == "strong" and split["moa"]["early_exit"]["escalated"] is True


def test_a_budget_drops_the_most_expensive_proposer_first(spend: Spend) -> None:
    # Estimates: output at 1024 tokens each; pricey ~ $0.10, mid ~ $0.01, cheap ~ $0.001 per call.
    body = spend.post("priced", moa={"max_cost_usd": 0.02}).json()

    budget = body["moa"]["budget"]
    assert budget["actions"] == ["dropped proposer pricey (layer 1)"]
    assert budget["estimated_usd"] <= 0.02 and budget["max_usd"] == 0.02
    assert budget["actual_usd"] == pytest.approx(body["moa"]["cost_usd"], abs=1e-8)
    assert "pricey" not in spend.called() and spend.called().count("cheap") == 2


def test_a_tighter_budget_caps_proposers_then_leaves_the_aggregator_alone(spend: Spend) -> None:
    # min_proposers 3: none may be dropped. At 1024 output tokens each the estimate is ~$0.12; capped at
    # 512 ~$0.06, at 256 ~$0.03.
    capped = spend.post("priced-quorum", moa={"max_cost_usd": 0.05}).json()["moa"]["budget"]
    assert capped["actions"] == ["capped proposers at max_tokens 512", "capped proposers at max_tokens 256"]
    proposers = [b for b in spend.recorder.bodies() if "Responses from models:" not in str(b["messages"])]
    assert sorted(b["model"] for b in proposers) == ["cheap", "mid", "pricey"]
    assert all(b["max_tokens"] == 256 for b in proposers)

    spend.recorder.clear()
    alone = spend.post("priced-quorum", moa={"max_cost_usd": 0.005}).json()
    assert alone["moa"]["budget"]["actions"][-1] == "aggregator alone"
    assert spend.called() == ["cheap"]


def test_the_lower_of_the_request_and_pipeline_budgets_wins(spend: Spend) -> None:
    body = spend.post("budgeted", moa={"max_cost_usd": 1.0}).json()

    assert body["moa"]["budget"]["max_usd"] == 0.02
    assert "pricey" not in spend.called()


def test_a_budget_nothing_fits_is_a_400_before_any_call(spend: Spend) -> None:
    response = spend.post("priced", moa={"max_cost_usd": 0.0000001})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded" and error["param"] == "moa.max_cost_usd"
    assert spend.called() == []


def test_reference_max_tokens_caps_what_proposers_may_write(spend: Spend) -> None:
    spend.post("capped", max_tokens=500)

    bodies = spend.recorder.bodies()
    proposers = [b for b in bodies if "Responses from models:" not in str(b["messages"])]
    aggregator = [b for b in bodies if "Responses from models:" in str(b["messages"])]
    assert [b["max_tokens"] for b in proposers] == [64, 64]
    assert aggregator[0]["max_tokens"] == 500, "the acting model keeps the client's"


def test_a_proposer_whose_input_would_not_fit_is_not_called(spend: Spend) -> None:
    long_question = [{"role": "user", "content": "Tell me about France. " * 20}]
    response = httpx.post(
        f"{spend.url}/v1/chat/completions", json={"model": "windowed", "messages": long_question}, timeout=10
    )

    calls = response.json()["moa"]["calls"]
    narrow = next(c for c in calls if c["model"] == "narrow")
    assert narrow["status"] == "skipped" and narrow["error_code"] == "context_overflow"
    assert "narrow" not in spend.called() and "agg" in spend.called()


def test_references_are_shortened_to_fit_the_aggregator(spend: Spend) -> None:
    response = spend.post("fitting")

    assert response.status_code == 200, response.text
    (aggregator,) = spend.recorder.sent_to("small-agg")
    system = aggregator["messages"][0]["content"]
    assert "characters omitted" in system, "the long reference is cut, visibly"
    assert "Paris." in system, "the short one is whole"


def test_a_conversation_over_the_acting_models_window_is_a_400(spend: Spend) -> None:
    huge = [{"role": "user", "content": "France " * 500}]
    response = httpx.post(
        f"{spend.url}/v1/chat/completions", json={"model": "fitting", "messages": huge}, timeout=10
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert spend.called() == []


def test_select_returns_the_chosen_proposal_verbatim(spend: Spend) -> None:
    body = spend.post("selecting").json()

    assert body["choices"][0]["message"]["content"] == "Lyon, I think."
    assert body["moa"]["answered_by"] == "lyon"
    assert spend.called().count("picker") == 1


def test_an_unparseable_selection_falls_back_to_synthesis(spend: Spend) -> None:
    body = spend.post("select-fallback").json()

    assert spend.called().count("dithering") == 2, "the selection, then a synthesis"
    assert body["moa"]["answered_by"] == "dithering"
    assert body["choices"][0]["message"]["content"] == "They are all fine."


def test_sequential_aggregation_carries_the_synthesis_window_by_window(spend: Spend) -> None:
    body = spend.post("sequential").json()

    rounds = spend.recorder.sent_to("agg")
    assert len(rounds) == 4, "5 references, 2 per round: 2, then 1 beside the running synthesis, three times"
    for sent in rounds:
        system = sent["messages"][0]["content"]
        assert "\n2. " in system and "\n3. " not in system
    assert body["moa"]["answered_by"] == "agg"
    assert [c["role"] for c in body["moa"]["calls"]].count("aggregator") == 4


def test_self_moa_samples_get_their_own_seed_and_temperature(spend: Spend) -> None:
    spend.post("self-moa", seed=42)

    samples = spend.recorder.sent_to("sampled")
    assert sorted(b["seed"] for b in samples) == [42, 43, 44]
    assert all(b["temperature"] == 0.7 for b in samples), "the model's 0 would make the samples identical"


def test_agreement_does_not_answer_for_the_aggregator_when_the_client_offers_tools(spend: Spend) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    body = spend.post("agree", tools=[tool]).json()

    assert body["choices"][0]["finish_reason"] == "tool_calls", "only the aggregator was given the tools"
    assert body["moa"]["early_exit"]["skipped"] == "layers", "layer 2 is still skipped"
    assert spend.called().count("agg") == 1 and len(spend.called()) == 4


def test_select_leaves_a_schema_request_to_a_synthesis(spend: Spend) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    response_format = {"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}
    body = spend.post("selecting", response_format=response_format).json()

    assert spend.called().count("picker") == 1
    assert body["moa"]["answered_by"] == "picker"
    assert "degraded" not in body["moa"]


def test_a_budget_prices_the_model_escalated_to(spend: Spend) -> None:
    # With its cheap aggregator the run costs ~$0.013; the model it escalates to costs ~$0.10 alone.
    response = spend.post("escalating-priced", moa={"max_cost_usd": 0.05})

    assert response.status_code == 400 and response.json()["error"]["code"] == "budget_exceeded"
    assert spend.called() == []
    assert spend.post("escalating-priced", moa={"max_cost_usd": 0.5}).status_code == 200
