"""OpenTelemetry's GenAI client metrics as Prometheus histograms, beside the `moa_upstream_*` ones, so
dashboards built for the semantic conventions work on the gateway's upstream calls unchanged.

Names, labels and buckets follow the conventions (gen-ai-metrics.md) as OpenTelemetry's Prometheus
exporter writes them: `gen_ai.client.operation.duration` (s) -> `gen_ai_client_operation_duration_seconds`,
`gen_ai.client.token.usage` ({token}) -> `gen_ai_client_token_usage`, attribute dots -> underscores.
Label values come from the config: the provider kind's `gen_ai.provider.name` (`openai`,
`moa.simulator`), the upstream model id.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram

from moa_gateway.core.types import Usage

# The conventions' advised bucket boundaries.
OPERATION_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TOKEN_USAGE_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip


@dataclass(frozen=True)
class GenAITarget:
    """A model alias as the conventions name it: the provider (`gen_ai.provider.name`) and the model id
    sent upstream (`gen_ai.request.model`)."""

    provider_name: str
    request_model: str


class GenAIMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.operation_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "OpenTelemetry GenAI: duration of each upstream call (chat: proposers, aggregators, direct "
            "calls; embeddings), by operation, provider, upstream model and error type (empty when it "
            "succeeded)",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type"],
            buckets=OPERATION_DURATION_BUCKETS,
            registry=registry,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "OpenTelemetry GenAI: tokens of each successful upstream call, by operation, provider, "
            "upstream model and token type (input, output)",
            ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"],
            buckets=TOKEN_USAGE_BUCKETS,
            registry=registry,
        )
        # Children by label values: labels() validates and locks on every call (see metrics._Children).
        self._durations: dict[tuple[str, ...], Histogram] = {}
        self._tokens: dict[tuple[str, ...], Histogram] = {}

    def call(
        self,
        operation: str,
        target: GenAITarget,
        duration_s: float,
        usage: Usage | None = None,
        error_type: str = "",
    ) -> None:
        """Record one upstream call: its duration, and its input and output tokens when it succeeded."""
        key = (operation, target.provider_name, target.request_model, error_type)
        duration = self._durations.get(key)
        if duration is None:
            duration = self._durations[key] = self.operation_duration.labels(*key)
        duration.observe(duration_s)
        if usage is None:
            return
        counts = [("input", usage.prompt_tokens)]
        if operation != "embeddings":  # an embedding has no output tokens to count
            counts.append(("output", usage.completion_tokens))
        for token_type, count in counts:
            key = (operation, target.provider_name, target.request_model, token_type)
            tokens = self._tokens.get(key)
            if tokens is None:
                tokens = self._tokens[key] = self.token_usage.labels(*key)
            tokens.observe(count)
