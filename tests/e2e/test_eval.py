"""`moa-gateway eval` end to end on the simulator: in-process through the chat service (and once through a
running gateway), with the simulated judge steered to deterministic verdicts. Upstream calls are
counted in the runtime's metrics, by role."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from moa_gateway.cli import build_parser, main
from moa_gateway.cli.eval import evaluate
from moa_gateway.config import parse_config
from moa_gateway.telemetry.metrics import Metrics
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape

ITEMS: list[dict[str, Any]] = [
    {"id": "sky", "category": "science", "prompt": "Why is the sky blue?"},
    {"id": "sum", "category": "maths", "prompt": "Add 17 and 25, step by step.", "reference": "42"},
    {"id": "tea", "category": "writing", "prompt": "Describe tea in one line."},
    {"id": "xss", "category": "writing", "prompt": "Is <script>alert(1)</script> safe?"},
    {"question_id": 81, "category": "writing", "turns": ["Write a title.", "Now a subtitle."]},  # MT-Bench
    {"id": "sea", "category": "science", "prompt": "Why is the sea salty?"},
]
TURNS = sum(len(item.get("turns", [1])) for item in ITEMS)  # answers per side: 7


def config(judge_simulate: dict[str, Any], omega_ttft_ms: float = 0) -> dict[str, Any]:
    """Pipeline `moa` (alpha, beta -> omega), baseline model `beta`, and a simulated `judge`."""
    models: dict[str, Any] = {
        name: {"provider": "sim", "price": {"input_per_mtok": price, "output_per_mtok": price}}
        for name, price in [("alpha", 1.0), ("beta", 2.0), ("omega", 3.0), ("judge", 5.0)]
    }
    models["omega"]["params"] = {"simulate": {"ttft_ms": omega_ttft_ms}}
    models["judge"]["params"] = {"simulate": judge_simulate}
    return {
        "providers": {"sim": {"type": "simulated", "ttft_ms": 0, "tokens_per_s": 0}},
        "models": models,
        "pipelines": {"moa": {"layers": [{"proposers": ["alpha", "beta"]}], "aggregator": "omega"}},
    }


def setup(tmp_path: Path, judge_simulate: dict[str, Any], omega_ttft_ms: float = 0) -> tuple[Path, Path]:
    config_path, dataset = tmp_path / "moa.yaml", tmp_path / "items.jsonl"
    config_path.write_text(yaml.safe_dump(config(judge_simulate, omega_ttft_ms)))
    dataset.write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    return config_path, dataset


def eval_args(config_path: Path, dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        "eval", "--config", str(config_path), "--dataset", str(dataset), "--candidate", "moa",
        "--baseline", "beta", "--judge", "judge", "--out", str(out), "--quiet", *extra,
    ]  # fmt: skip


async def run(argv: list[str], metrics: Metrics | None = None) -> dict[str, Any]:
    return await evaluate(build_parser().parse_args(argv), metrics)


def calls(metrics: Metrics, **labels: str) -> float:
    """Upstream calls made, of the given role (or all)."""
    return Scrape(metrics.render().decode()).value("moa_upstream_request_duration_seconds_count", **labels)


async def test_a_judge_preferring_the_candidate_gives_all_wins_with_counts_and_costs(tmp_path: Path) -> None:
    config_path, dataset = setup(tmp_path, {"prefer": "omega"})  # the candidate's answers are omega's
    metrics = Metrics()

    report = await run(eval_args(config_path, dataset, tmp_path / "out"), metrics)

    assert (report["items"], report["judged"], report["errors"], report["unparseable"]) == (6, 6, 0, 0)
    assert (report["win_rate"], report["tie_rate"], report["loss_rate"]) == (1.0, 0.0, 0.0)
    assert report["win_rate_ci"] == [1.0, 1.0]
    # Every answer, in each turn, and two judge calls per item, with the judge's calls under its own role.
    assert calls(metrics, role="aggregator") == TURNS and calls(metrics, role="proposer") == 2 * TURNS
    assert calls(metrics, role="direct") == TURNS
    assert calls(metrics, role="judge") == 2 * len(ITEMS)
    sides = report["sides"]
    assert sides["candidate"]["answers"] == 6 and sides["candidate"]["calls"] == TURNS
    assert sides["candidate"]["cost_per_answer_usd"] > sides["baseline"]["cost_per_answer_usd"] > 0
    assert sides["judge"]["calls"] == 12 and sides["judge"]["cost_usd"] > 0
    assert sides["candidate"]["latency_p95_s"] >= sides["candidate"]["latency_p50_s"] > 0
    assert set(report["categories"]) == {"maths", "science", "writing"}
    assert report["categories"]["writing"]["items"] == 3
    mt_bench = next(r for r in report["results"] if r["id"] == "81")
    assert (
        mt_bench["candidate"]["answer"].startswith("Turn 1: [omega]")
        and "Turn 2: [omega]" in mt_bench["candidate"]["answer"]
    )
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["win_rate"] == 1.0 and saved["results"][0]["verdicts"][0]["label"] == "A>>B"


async def test_a_position_biased_judge_gives_inconsistent_pairs_counted_as_ties(tmp_path: Path) -> None:
    config_path, dataset = setup(tmp_path, {"verdict": "A>B"})  # always prefers whichever answer is first

    report = await run(eval_args(config_path, dataset, tmp_path / "out"))

    assert report["judged"] == 6 and report["inconsistent"] == 6
    assert (report["win_rate"], report["tie_rate"], report["loss_rate"]) == (0.0, 1.0, 0.0)
    assert report["scores"]["mean_preference"] == 0.0


async def test_the_default_simulated_judge_gives_rates_summing_to_one_within_their_intervals(
    tmp_path: Path,
) -> None:
    config_path, dataset = setup(tmp_path, {})

    for mode in ("pairwise", "single"):
        report = await run(eval_args(config_path, dataset, tmp_path / mode, "--mode", mode))

        assert report["judged"] == 6 and report["mode"] == mode
        assert report["win_rate"] + report["tie_rate"] + report["loss_rate"] == pytest.approx(1.0)
        for outcome in ("win", "tie", "loss"):
            low, high = report[f"{outcome}_rate_ci"]
            assert 0 <= low <= report[f"{outcome}_rate"] <= high <= 1
    scores = report["scores"]
    assert 1 <= scores["candidate"] <= 10 and 1 <= scores["baseline"] <= 10


def test_unparseable_verdicts_are_retried_once_then_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path, dataset = setup(tmp_path, {"verdict": "unparseable"})

    code = main(eval_args(config_path, dataset, tmp_path / "out"))

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 1  # nothing could be judged
    assert (report["judged"], report["unparseable"], report["errors"]) == (0, 6, 0)
    assert report["sides"]["judge"]["calls"] == 4 * 6 and report["sides"]["judge"]["retries"] == 2 * 6
    assert "6 unparseable" in capsys.readouterr().out


async def test_an_interrupted_run_resumes_from_the_answer_cache(tmp_path: Path) -> None:
    config_path, dataset = setup(tmp_path, {"prefer": "omega"}, omega_ttft_ms=40)
    argv = eval_args(config_path, dataset, tmp_path / "out", "--concurrency", "1")
    cache = tmp_path / "out" / "cache" / "answers.jsonl"

    first = asyncio.create_task(run(argv))
    for _ in range(1000):  # until a few items are answered
        if cache.exists() and len(cache.read_text().splitlines()) >= 8:
            break
        await asyncio.sleep(0.01)
    first.cancel()  # as Ctrl-C does to `asyncio.run`
    with pytest.raises(asyncio.CancelledError):
        await first
    cached = Counter(json.loads(line)["model"] for line in cache.read_text().splitlines())
    assert 0 < cached["moa"] < TURNS  # interrupted part-way

    metrics = Metrics()
    resumed = await run(argv, metrics)

    # Only what the first run had not answered is asked again.
    assert calls(metrics, role="aggregator") == TURNS - cached["moa"]
    assert calls(metrics, role="direct") == TURNS - cached["beta"]
    assert calls(metrics, role="judge") == 2 * len(ITEMS) - cached["judge"]
    assert resumed["sides"]["candidate"]["cached"] == cached["moa"]
    assert (resumed["judged"], resumed["win_rate"]) == (6, 1.0)
    again = Metrics()
    await run(argv, again)
    assert calls(again) == 0  # everything is cached now


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.urls += [value or "" for name, value in attrs if name in ("src", "href")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


async def test_the_html_report_is_self_contained_with_three_charts(tmp_path: Path) -> None:
    config_path, dataset = setup(tmp_path, {"prefer": "omega"})
    await run(eval_args(config_path, dataset, tmp_path / "out"))

    html = (tmp_path / "out" / "report.html").read_text()
    page = Page()
    page.feed(html)

    text = " ".join(page.text)
    assert page.tags["svg"] == 3 and page.tags["circle"] > 12  # rates, quality/cost, latency dots
    assert page.tags["script"] == 0 and page.tags["link"] == 0 and page.urls == []  # nothing to fetch
    assert page.tags["details"] == 6  # one per item
    assert (
        "moa vs beta" in text and "100% [100%, 100%]" in text and "Is <script>alert(1)</script> safe?" in text
    )
    assert "<script>alert(1)</script>" not in html  # the dataset's text is escaped
    assert "How to read this" in text


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless chromium is not installed")
def test_the_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    config_path, dataset = setup(tmp_path, {"prefer": "omega"})
    assert main(eval_args(config_path, dataset, tmp_path / "out")) == 0
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
    ]
    flags += ["--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]

    dom = subprocess.run(
        ["chromium", *flags, "--dump-dom", (tmp_path / "out" / "report.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout

    assert dom.count("<svg") == 3 and "Win rate (95% interval)" in dom and "Latency per answer" in dom


async def test_eval_through_a_running_gateway(tmp_path: Path) -> None:
    config_path, dataset = setup(tmp_path, {"prefer": "omega"})
    gateway_config = parse_config(yaml.safe_load(config_path.read_text()), "test")

    with serve_gateway(gateway_config) as gateway:
        report = await run(eval_args(config_path, dataset, tmp_path / "out", "--url", gateway.url))

    assert (report["judged"], report["win_rate"]) == (6, 1.0)
    assert report["sides"]["candidate"]["cost_per_answer_usd"] > 0  # from the gateway's `moa.cost_usd`
    assert report["sides"]["judge"]["cost_usd"] > 0


def test_unknown_models_and_bad_datasets_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path, dataset = setup(tmp_path, {})
    argv = eval_args(config_path, dataset, tmp_path / "out")

    assert main([*argv[:-1], "--judge", "gpt-9", "--quiet"]) == 2
    assert "--judge: 'gpt-9' is neither a pipeline nor a model" in capsys.readouterr().err
    dataset.write_text('{"prompt": "fine"}\n{"prompt": 3}\n')
    assert main(argv) == 2
    assert "items.jsonl:2:" in capsys.readouterr().err


def test_the_documented_example_runs_offline_on_the_demo_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "guides" / "evaluation.md").read_text()
    command = page.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    argv = shlex.split(command)
    assert argv[:2] == ["moa-gateway", "eval"]
    monkeypatch.chdir(root)  # the page's paths are the repository's

    code = main([*argv[1:], "--limit", "2", "--out", str(tmp_path / "out"), "--quiet"])

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0 and report["judged"] == 2 and report["errors"] == 0
    assert report["win_rate"] + report["tie_rate"] + report["loss_rate"] == pytest.approx(1.0)
    assert "moa vs sim-omega, judged by sim-judge (pairwise)" in capsys.readouterr().out
