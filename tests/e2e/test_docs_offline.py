"""`/docs` (Swagger UI) and `/redoc` render in a headless browser that can reach nothing but the gateway:
their scripts and styles come from the gateway itself, behind its key like the rest of the API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect
from pydantic import SecretStr

from moa_gateway.settings import Settings
from tests.support.browser import chromium
from tests.support.configs import simulated_config
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread

KEY = "docs-key-0123456789"


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServerThread]:
    with serve_gateway(simulated_config(), Settings(api_keys=SecretStr(KEY))) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def offline(browser: Browser, gateway: ServerThread) -> Iterator[tuple[Page, list[str]]]:
    """A page that sends the gateway key and whose every request elsewhere fails, as with no network;
    the list collects what it tried to reach elsewhere."""
    context = browser.new_context(extra_http_headers={"authorization": f"Bearer {KEY}"})
    elsewhere: list[str] = []

    def only_the_gateway(route: Route) -> None:
        if route.request.url.startswith(gateway.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_the_gateway)
    yield context.new_page(), elsewhere
    context.close()


def test_swagger_ui_renders_the_operations_with_no_network(
    offline: tuple[Page, list[str]], gateway: ServerThread
) -> None:
    page, elsewhere = offline
    page.goto(f"{gateway.url}/docs")

    chat = page.locator(".opblock-summary-path", has_text="/v1/chat/completions")
    expect(chat.first).to_be_visible(timeout=10_000)
    expect(page.locator(".opblock-summary-path", has_text="/v1/models").first).to_be_visible()
    assert elsewhere == []


def test_redoc_renders_the_operations_with_no_network(
    offline: tuple[Page, list[str]], gateway: ServerThread
) -> None:
    page, elsewhere = offline
    page.goto(f"{gateway.url}/redoc")

    expect(page.get_by_text("Create a chat completion", exact=False).first).to_be_visible(timeout=10_000)
    assert elsewhere == []


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"])
def test_the_docs_and_their_assets_need_the_key(gateway: ServerThread, path: str) -> None:
    assert httpx.get(gateway.url + path).status_code == 401
    assert httpx.get(gateway.url + path, headers={"authorization": f"Bearer {KEY}"}).status_code == 200


@pytest.mark.parametrize("name", ["index.html", "..%2F__init__.py", "swagger-ui-bundle.js.map"])
def test_only_the_pages_own_files_are_served(gateway: ServerThread, name: str) -> None:
    response = httpx.get(f"{gateway.url}/docs/assets/{name}", headers={"authorization": f"Bearer {KEY}"})

    assert response.status_code == 404 and response.json()["error"]["type"] == "invalid_request_error"
