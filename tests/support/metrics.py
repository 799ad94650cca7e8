"""Read /metrics with prometheus-client's own parser, as Prometheus would."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include `labels` (0 if none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )


def scrape(url: str) -> Scrape:
    """The gateway at `url`'s /metrics, parsed."""
    return Scrape(httpx.get(f"{url}/metrics").text)


def scrape_when(url: str, ready: Callable[[Scrape], bool], timeout_s: float = 5.0) -> Scrape:
    """The first scrape of `url`'s /metrics that is `ready`, polled every 20 ms; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        scraped = scrape(url)
        if ready(scraped):
            return scraped
        assert time.monotonic() < deadline, "the metrics never showed the expected state"
        time.sleep(0.02)


def wait_for_metric(
    url: str, name: str, at_least: float = 1, timeout_s: float = 10.0, **labels: str
) -> Scrape:
    """The gateway at `url`'s metrics once `name` (with `labels`) reaches `at_least`; AssertionError if it
    does not within `timeout_s` (for what happens after a response, in the background)."""
    deadline = time.monotonic() + timeout_s
    while True:
        scraped = scrape(url)
        if scraped.value(name, **labels) >= at_least:
            return scraped
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} stayed at {scraped.value(name, **labels)} < {at_least}")
        time.sleep(0.05)
