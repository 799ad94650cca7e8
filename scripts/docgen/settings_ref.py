"""docs/reference/settings.md: every process setting, walked from the pydantic-settings class."""

from __future__ import annotations

from pydantic import AliasChoices

from moa_gateway.settings import Settings
from scripts.docgen.fields import description
from scripts.docgen.markdown import GENERATED_NOTE, code, default_text, field_type, table

# Variables the gateway reads that are not its own settings: from the libraries and standards it follows.
OTHER_VARIABLES = [
    (
        "`PROMETHEUS_MULTIPROC_DIR`",
        "with several workers, where they write their metrics (a temporary "
        "directory unless set; emptied at start); see [Metrics](../operations/metrics.md)",
    ),
    (
        "`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`",
        "turn tracing on (with "
        "`MOA_TRACING=auto`) and say where spans go; the exporter reads the standard OTel environment "
        "(headers, timeout); see [Tracing](../operations/tracing.md)",
    ),
    (
        "`OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER`",
        "`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keep tracing off under `MOA_TRACING=auto`",
    ),
    ("`OTEL_SERVICE_NAME`", "the traces' `service.name` (default `moa-gateway`)"),
    (
        "`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`",
        "the proxy for upstream calls, by scheme, "
        "read once at start-up; see [Real providers](../guides/real-providers.md)",
    ),
    (
        "`MOA_EVAL_API_KEY`",
        "`moa-gateway eval --url`: the running gateway's key, when `--api-key` is not given",
    ),
]


def env_names(name: str) -> list[str]:
    """The environment variables a setting is read from: its aliases, else `MOA_` + its name."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        names = [str(choice) for choice in alias.choices if str(choice) != name]
        if names:
            return names
    return [f"MOA_{name.upper()}"]


def render() -> str:
    rows = [
        [
            ", ".join(code(env) for env in env_names(name)),
            field_type(field),
            default_text(field),
            description(Settings, name, field),
        ]
        for name, field in Settings.model_fields.items()
    ]
    return "\n".join(
        [
            "# Process settings reference\n",
            GENERATED_NOTE,
            "Environment variables read once at start-up (`app/moa_gateway/settings.py`); what a "
            "deployment sets, beside the [config file](config.md) that holds the model topology. "
            "`moa-gateway serve` flags override them ([Command line](cli.md)). Secrets are "
            "never logged.\n",
            table(["variable", "type", "default", "description"], rows),
            "## Other variables the gateway reads\n",
            table(["variable", "what"], [list(row) for row in OTHER_VARIABLES]),
        ]
    )
