"""The playground page in a real headless browser (Debian's chromium, driven by Playwright), against a
real gateway in front of the real simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from pydantic import SecretStr

from moa_gateway.config import load_config
from moa_gateway.settings import Settings
from tests.support.browser import chromium, playground
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread
from tests.support.showcase import showcase_config

KEY = "play-key-0123456789"
RUN_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def gateway(sim_server: ServerThread) -> Iterator[ServerThread]:
    with serve_gateway(showcase_config(sim_server.url)) as server:
        yield server


@pytest.fixture
def page(browser: Browser, gateway: ServerThread) -> Iterator[Page]:
    with playground(browser, gateway.url) as opened:
        yield opened


def ask(page: Page, prompt: str, model: str = "moa") -> None:
    page.select_option("#model", model)
    page.fill("#prompt", prompt)
    page.click("#send")
    expect(page.locator(".run").last).to_have_attribute("data-done", "true", timeout=RUN_TIMEOUT_MS)


def test_the_page_is_served_whole_and_asks_nothing_of_other_hosts(
    browser: Browser, gateway: ServerThread
) -> None:
    context = browser.new_context()
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{gateway.url}/")
    page.click("text=Playground")
    expect(page).to_have_title("moa-gateway playground")
    expect(page.locator("#model option")).to_have_count(10)  # 3 pipelines, 7 models

    assert [
        o.get_attribute("value") for o in page.locator("#model optgroup[label=Pipelines] option").all()
    ] == [
        "moa",
        "shaky",
        "tripped",
    ]
    assert all(url.startswith(gateway.url) for url in requested), requested
    response = httpx.get(f"{gateway.url}/playground")
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert len(response.content) < 32 * 1024
    context.close()


def test_a_run_fills_every_proposer_column_then_the_aggregator_then_the_timeline(page: Page) -> None:
    ask(page, "Why is the sky blue?")

    run = page.locator(".run")
    for layer in ("1", "2"):
        columns = run.locator(f'.layer[data-layer="{layer}"] .col')
        expect(columns).to_have_count(3)
        for slot, model in enumerate(["alpha", "beta", "gamma"]):
            call = columns.nth(slot).locator(".call")
            expect(call).to_have_attribute("data-status", "ok")
            expect(call.locator(".text")).to_contain_text(f"[{model}]")
            expect(call.locator(".stats")).to_contain_text("TTFT")
            expect(call.locator(".stats")).to_contain_text("$0.0")
    final = run.locator('.col[data-role="final"] .call')
    expect(final).to_have_attribute("data-model", "omega")
    expect(final.locator(".text")).to_contain_text(
        "[omega] Synthesis of 3 responses on 'Why is the sky blue?'"
    )
    bars = run.locator(".timeline .bar")
    expect(bars).to_have_count(7)
    # The critical path: the slowest proposer of each layer, and the aggregator.
    expect(run.locator('.timeline .bar[data-critical="true"]')).to_have_count(3)
    expect(run.locator(".timeline .summary")).to_contain_text("cost $0.0")
    expect(run.locator(".timeline .summary")).to_contain_text("7 calls")


def test_a_failed_proposer_its_fallback_and_a_dropped_one_show_where_they_happened(page: Page) -> None:
    ask(page, "Why is the sky blue?", model="shaky")

    broken_slot = page.locator('.layer[data-layer="1"] .col').nth(1)
    expect(broken_slot.locator('.call[data-model="broken"]')).to_have_attribute("data-status", "error")
    expect(broken_slot.locator('.call[data-model="broken"] .err')).to_contain_text("upstream_error")
    expect(broken_slot.locator('.call[data-model="gamma"] .badge')).to_have_text("ok · fallback for broken")
    flaky_slot = page.locator('.layer[data-layer="1"] .col').nth(2)
    expect(flaky_slot).to_have_class("col dropped")
    expect(flaky_slot.locator(".err").first).to_contain_text("model flaky")
    expect(page.locator(".timeline .bar.error")).to_have_count(2)
    expect(page.locator('.col[data-role="final"] .call .text')).to_contain_text("Synthesis of 2 responses")


def test_a_model_skipped_for_its_open_circuit_shows_as_skipped(page: Page) -> None:
    ask(page, "Why is the sky blue?", model="tripped")  # the failure of `fragile` opens its circuit
    expect(page.locator('.call[data-model="fragile"]')).to_have_attribute("data-status", "error")
    ask(page, "Why is the sky blue?", model="tripped")

    fragile = page.locator('.call[data-model="fragile"]')
    expect(fragile).to_have_attribute("data-status", "skipped")
    expect(fragile.locator(".err")).to_contain_text("circuit_open")
    expect(page.locator(".timeline .bar.skipped")).to_have_count(1)


def test_a_failed_run_says_why(page: Page) -> None:
    page.select_option("#model", "flaky")
    page.fill("#prompt", "Why is the sky blue?")
    page.click("#send")

    expect(page.locator(".run .run-error")).to_contain_text("502")
    expect(page.locator(".run h2 .badge")).to_have_text("failed")


def test_compare_mode_runs_a_pipeline_and_a_model_side_by_side(page: Page) -> None:
    page.check("#compare")
    page.select_option("#model2", "beta")
    ask(page, "Why is the sky blue?")

    runs = page.locator(".run")
    expect(runs).to_have_count(2)
    expect(runs.nth(0)).to_have_attribute("data-model", "moa")
    expect(runs.nth(1)).to_have_attribute("data-model", "beta")
    expect(runs.nth(1)).to_have_attribute("data-done", "true", timeout=RUN_TIMEOUT_MS)
    expect(runs.nth(1).locator('.col[data-role="final"] .text')).to_contain_text(
        "[beta] On 'Why is the sky blue?'"
    )
    expect(runs.nth(1).locator(".timeline .bar")).to_have_count(1)
    summary = page.locator(".compare-summary")
    expect(summary).to_contain_text("moa: $0.0")
    expect(summary).to_contain_text("beta: $0.0")
    expect(summary).to_contain_text(" ms")


def test_a_conversation_goes_on_with_its_system_prompt_and_earlier_turns(page: Page) -> None:
    sent: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: (
            sent.append(json.loads(r.post_data or "{}")) if r.url.endswith("/chat/completions") else None
        ),
    )
    page.click("summary")
    page.fill("#system", "Answer briefly.")
    ask(page, "Why is the sky blue?", model="alpha")
    ask(page, "And at sunset?", model="alpha")

    second = sent[-1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[0]["content"] == "Answer briefly."
    assert second[2]["content"].startswith("[alpha] On 'Why is the sky blue?'")
    assert sent[-1]["moa"] == {"stream_events": True}
    turns = page.locator(".run .turn")
    expect(turns).to_have_count(3)
    expect(page.locator('.col[data-role="final"] .text')).to_contain_text("On 'And at sunset?'")


def test_with_gateway_keys_the_page_asks_for_one_and_keeps_it_in_the_tab_only(
    browser: Browser, sim_server: ServerThread
) -> None:
    with serve_gateway(showcase_config(sim_server.url), Settings(api_keys=SecretStr(KEY))) as gateway:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{gateway.url}/playground")
        expect(page.locator("#keybox")).to_be_visible()
        expect(page.locator("#notice")).to_contain_text("needs a key")

        page.fill("#key", KEY)
        page.locator("#key").dispatch_event("change")
        expect(page.locator("#model option")).not_to_have_count(0)
        ask(page, "Why is the sky blue?", model="alpha")

        expect(page.locator('.col[data-role="final"] .text')).to_contain_text("[alpha]")
        assert page.evaluate("sessionStorage.getItem('moa-gateway-key')") == KEY
        assert page.evaluate("localStorage.length") == 0
        assert page.context.cookies() == []
        context.close()


def test_the_model_picker_offers_no_judge_of_the_demo_config(browser: Browser) -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "config" / "moa.yaml")
    with serve_gateway(config) as server:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{server.url}/playground")
        expect(page.locator("#model option")).not_to_have_count(0)
        offered = [o.get_attribute("value") for o in page.locator("#model option").all()]
        compared = [o.get_attribute("value") for o in page.locator("#model2 option").all()]
        context.close()

    assert offered == ["moa", "moa-lite", "sim-alpha", "sim-beta", "sim-gamma", "sim-omega"]
    assert compared == offered
