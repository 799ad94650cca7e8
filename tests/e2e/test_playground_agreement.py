"""The playground shows how far a layer agreed (and who dissented), a peer ranking and a gate's decision,
in a real headless browser against a real gateway in front of the real simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.agreement import agreement_config
from tests.support.browser import chromium, playground
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread

RUN_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def gateway(sim_server: ServerThread) -> Iterator[ServerThread]:
    with serve_gateway(agreement_config(sim_server.url)) as server:
        yield server


@pytest.fixture
def page(browser: Browser, gateway: ServerThread) -> Iterator[Page]:
    with playground(browser, gateway.url) as opened:
        yield opened


def ask(page: Page, model: str) -> None:
    page.select_option("#model", model)
    page.fill("#prompt", "Why is the sky blue?")
    page.click("#send")
    expect(page.locator(".run").last).to_have_attribute("data-done", "true", timeout=RUN_TIMEOUT_MS)


def test_the_layer_shows_its_agreement_and_marks_the_dissenting_proposer(page: Page) -> None:
    ask(page, "panel")

    layer = page.locator('.layer[data-layer="1"]')
    expect(layer.locator(".agreement")).to_have_text("agreement 67% (normalized, 3 answers) · dissent: gamma")
    expect(layer.locator(".col.dissent")).to_have_count(1)
    expect(layer.locator(".col.dissent .call")).to_have_attribute("data-model", "gamma")


def test_a_peer_ranking_shows_its_reviewers_and_the_points_best_first(page: Page) -> None:
    ask(page, "reviewed")

    reviewers = page.locator('.layer[data-layer="review"] .col[data-role="reviewer"]')
    expect(reviewers).to_have_count(4)
    expect(page.locator('.col[data-role="final"] .call')).to_have_attribute("data-model", "omega")
    ranking = page.locator(".ranking")
    expect(ranking.locator(".stats")).to_have_text(
        "peer ranking: 3 of 4 rankings counted · the aggregator reads the top 2"
    )
    items = ranking.locator("li")
    expect(items).to_have_count(3)
    points = [int(item.get_attribute("data-points") or "-1") for item in items.all()]
    assert (
        points == sorted(points, reverse=True) and sum(points) == 9
    )  # 3 rankings of two answers: 2 + 1 points each
    expect(ranking.locator(".err")).to_contain_text("dropped: grumpy's ranking (malformed ranking")
    expect(page.locator(".timeline .lbl", has_text="review")).to_have_count(4)


def test_a_gate_that_passes_shows_its_decision_and_its_answer_and_no_layer(page: Page) -> None:
    ask(page, "gated")

    rows = page.locator(".run .layer")
    expect(rows.first).to_have_attribute("data-layer", "gate")
    gate = rows.first.locator(".gate")
    expect(gate).to_have_text("gate: passed (confidence 0.91 ≥ 0.80)")
    expect(gate).to_have_attribute("title", "the gate model reported confidence 0.91 (0.91 >= 0.8)")
    expect(rows.first.locator('.col[data-role="gate"] .call')).to_have_attribute("data-status", "ok")
    expect(page.locator('.layer[data-layer="1"]')).to_have_count(0)  # no proposer was called
    final = page.locator('.col[data-role="final"]')
    expect(final).to_have_attribute("data-primary", "sure")
    expect(final.locator(".text")).to_contain_text("[sure] On 'Why is the sky blue?'")
    expect(final.locator(".text")).not_to_contain_text("Confidence")
    expect(page.locator(".timeline .lbl")).to_have_text(["gate sure"])


def test_a_gate_that_escalates_shows_why_before_the_layers_that_ran(page: Page) -> None:
    ask(page, "escalated")

    rows = page.locator(".run .layer")
    expect(rows).to_have_count(3)  # the gate, layer 1, the final answer
    expect(rows.nth(0).locator(".gate.escalated")).to_have_text(
        "gate: escalated to the panel (confidence 0.40 < 0.80)"
    )
    expect(rows.nth(1)).to_have_attribute("data-layer", "1")
    expect(rows.nth(1).locator(".col")).to_have_count(2)
    expect(page.locator('.col[data-role="final"] .call')).to_have_attribute("data-model", "omega")
    expect(page.locator(".timeline .lbl").first).to_have_text("gate unsure")
