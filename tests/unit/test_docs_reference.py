"""The generated reference pages (docs/reference/) are what the code gives now, and lack nothing the code
has: every config key, setting, CLI flag and metric family, and every field of the `moa` objects.

The completeness checks walk the code on their own (the parser's --help, the registry's public
collect(), pydantic's field lists), not through the generator, so a generator that skips something
fails here too."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from moa_gateway.cli import build_parser
from moa_gateway.config.schema import GatewayConfig
from moa_gateway.core.failures import FailureKind
from moa_gateway.core.reports import (
    AgreementReport,
    BudgetReport,
    CacheHit,
    Degraded,
    DroppedRanking,
    EarlyExitReport,
    GateReport,
    RankedProposal,
    RankingReport,
    Skipped,
)
from moa_gateway.core.types import Answer, CallRecord, CallStatus, MoaResult, Role, Usage
from moa_gateway.settings import Settings
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.wire.chat import (
    agreement_body,
    budget_body,
    cache_hit_body,
    call_body,
    early_exit_body,
    gate_body,
    moa_body,
    rankings_body,
)
from moa_gateway.wire.requests import MoaOptions
from moa_gateway.wire.responses_output import ResponseFrame, response_body
from scripts import gen_reference
from scripts.docgen import extension_ref

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference"
REGENERATE = ".venv/bin/python -m scripts.gen_reference"


def sections(page: str) -> dict[str, set[str]]:
    """A page's tables by the heading above them: the first cell of each row, without backticks."""
    found: dict[str, set[str]] = {}
    heading = ""
    lines = (REFERENCE / page).read_text().splitlines()
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        if line.startswith("#"):
            heading = line.lstrip("# ")
            found.setdefault(heading, set())
        elif line.startswith("| ") and not line.startswith("| ---") and not after.startswith("| ---"):
            first = line.split(" | ")[0].removeprefix("| ")
            found.setdefault(heading, set()).update(re.findall(r"`([^`]+)`", first) or [first])
    return found


def test_the_committed_pages_are_what_the_generator_writes_now() -> None:
    pages = gen_reference.generate()

    assert set(pages) == {p.name for p in REFERENCE.glob("*.md")} - {
        "index.md",
        "http-api.md",
        "simulator.md",
    }
    for name, text in pages.items():
        assert (REFERENCE / name).read_text() == text, (
            f"docs/reference/{name} is out of date: run `{REGENERATE}` and commit the result"
        )


def test_check_mode_names_a_stale_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, text in gen_reference.generate().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "cli.md").write_text("# stale\n")
    monkeypatch.setattr(gen_reference, "REFERENCE", tmp_path)
    err = io.StringIO()

    with contextlib.redirect_stderr(err):
        code = gen_reference.main(["--check"])

    assert code == 1
    assert err.getvalue() == "docs/reference/cli.md is out of date: run `python -m scripts.gen_reference`\n"


def config_objects(model: type[BaseModel]) -> list[type[BaseModel]]:
    """Every config class reachable from `model` through its field types."""

    def nested(annotation: Any) -> list[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for arg in get_args(annotation) for m in nested(arg)]

    found = [model]
    for field in model.model_fields.values():
        for inner in nested(field.annotation):
            found += [m for m in config_objects(inner) if m not in found]
    return found


def test_every_config_object_has_a_table_with_each_of_its_keys() -> None:
    tables = sections("config.md")
    objects = config_objects(GatewayConfig)

    assert len(objects) >= 11
    for model in objects:
        keys = set(model.model_fields)
        assert any(rows == keys for rows in tables.values()), f"no table lists {model.__name__}: {keys}"
    documented = {key for rows in tables.values() for key in rows}
    assert {k for m in objects for k in m.model_fields} <= documented


def test_every_setting_is_listed_under_each_environment_name() -> None:
    rows = sections("settings.md")["Process settings reference"]

    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = [str(a) for a in getattr(alias, "choices", []) if str(a) != name] or [f"MOA_{name.upper()}"]
        assert set(names) <= rows, f"{name}: {names} not in docs/reference/settings.md"
    assert len(rows) >= len(Settings.model_fields)


def help_of(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return out.getvalue()


def test_every_cli_command_and_flag_is_listed_under_its_command() -> None:
    choices = re.search(r"\{([a-z,-]+)\}", help_of()).group(1).split(",")  # type: ignore[union-attr]
    tables = sections("cli.md")

    assert {"serve", "check-config", "simulate", "hash-key", "eval"} <= set(choices)
    for command in choices:
        heading = f"`moa-gateway {command}`"
        assert heading in tables, f"no section for `{heading}` in docs/reference/cli.md"
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", help_of(command))) - {"--help"}
        assert flags <= tables[heading], f"{heading}: {sorted(flags - tables[heading])} not listed"
    assert "path" in tables["`moa-gateway check-config`"]


def test_every_metric_family_is_listed_with_its_type() -> None:
    page = (REFERENCE / "metrics.md").read_text()
    families = list(Metrics().registry.collect())

    assert len(families) >= 20
    for family in families:
        series = family.name + ("_total" if family.type == "counter" else "")
        assert f"| `{series}` | {family.type} |" in page, f"{series} ({family.type}) not in metrics.md"


def test_every_request_option_is_listed() -> None:
    assert set(MoaOptions.model_fields) == sections("extension.md")["The request's `moa`"]


def full_result() -> MoaResult:
    """A result with every optional part of the `moa` object set."""
    failed = CallRecord(
        1, "proposer", "beta", "error", 0.2, error="model beta: 500", failure=FailureKind.SERVER_ERROR
    )
    stood_in = CallRecord(
        1, "proposer", "gamma", "ok", 0.3, Usage(5, 7), 0.001, text="a", fallback_for="beta"
    )
    final = CallRecord(
        2, "aggregator", "omega", "ok", 0.4, Usage(9, 3, cached_tokens=4), 0.002, ttft_s=0.1, tool_calls=1
    )
    return MoaResult(
        "moa",
        Answer("x", "stop", Usage(9, 3)),
        [failed, stood_in, final],
        dropped=["beta"],
        answered_by="omega",
        degraded=Degraded.SCHEMA_INVALID,
        early_exit=EarlyExitReport(1, 1.0, Skipped.LAYERS),
        budget=BudgetReport(0.05, 0.01, ["aggregator alone"], 0.003),
        references_reused=True,
        agreement=AgreementReport(0.5, "normalized", 1, 2, ["beta"]),
        rankings=RankingReport(
            [RankedProposal(0, "gamma", 2, 1)], 2, 1, [DroppedRanking("beta", "malformed ranking")]
        ),
        cache_hit=CacheHit(0.004, 12, 30, 5.0),
        gate=GateReport("alpha", "agreement", 0.5, 0.8, False, "1 of 2 samples agree (0.5 < 0.8)"),
    )


def declared(title: str) -> set[str]:
    return {row[0] for row in extension_ref.TABLES[title]}


def test_the_response_tables_declare_exactly_what_the_wire_writes() -> None:
    result = full_result()
    written_calls = set().union(*(call_body(c) for c in result.calls)) | {"text"}

    responses = response_body(
        ResponseFrame("resp_1", "moa", {}, dropped_tools=("web_search",)), "completed", [], result
    )

    assert set(responses["moa"]) == declared("The response's `moa`")
    assert set(moa_body(result, include_proposals=True)) == declared("The response's `moa`") - {
        "dropped_tools"
    }
    assert {k for c in moa_body(result, True)["calls"] for k in c} == declared("`moa.calls[i]`")
    assert written_calls == declared("`moa.calls[i]`")
    assert set(early_exit_body(result.early_exit)) == declared("`moa.early_exit`")  # type: ignore[arg-type]
    assert set(budget_body(result.budget)) == declared("`moa.budget`")  # type: ignore[arg-type]
    assert set(agreement_body(result.agreement)) == declared("`moa.agreement`")  # type: ignore[arg-type]
    assert set(rankings_body(result.rankings)) == declared("`moa.rankings`")  # type: ignore[arg-type]
    assert set(gate_body(result.gate)) == declared("`moa.gate`")  # type: ignore[arg-type]
    assert set(cache_hit_body(result.cache_hit)) == declared("`moa.cache`")  # type: ignore[arg-type]
    tables = sections("extension.md")
    for title in extension_ref.TABLES:
        assert declared(title) == tables[title.strip()], f"{title}: the page differs from the table"


def test_the_enumerations_a_response_can_hold_are_all_named() -> None:
    page = (REFERENCE / "extension.md").read_text()

    for value in [*Degraded, *Skipped]:
        assert f"`{value.value}`" in page
    for word in [*get_args(CallStatus), *get_args(Role)]:
        assert f"`{word}`" in page
