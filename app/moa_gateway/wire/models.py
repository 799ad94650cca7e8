"""`/v1/models` bodies: OpenAI's model object plus the metadata clients read to size and price requests
(OpenRouter's names: `context_length`, `max_completion_tokens`, `top_provider`, `pricing` as strings of
USD per token), and a `moa` object that says what a pipeline runs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from moa_gateway.core.plan import Catalogue, ModelEntry

_PER_TOKEN = Decimal(1_000_000)


def usd_per_token(usd_per_mtok: float) -> str:
    """A price per million tokens as OpenRouter writes prices: a plain decimal string per token, exact
    (1.2 -> "0.0000012", not a float's "1.2e-06" or "0.0000011999")."""
    value = (Decimal(str(usd_per_mtok)) / _PER_TOKEN).normalize()
    return format(value, "f")


def _smallest(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _base(model_id: str, kind: str, created: int, window: int | None, cap: int | None) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": f"moa-gateway:{kind}",
        # --- metadata clients read (OpenRouter's shape) ---
        "context_length": window,
        "max_completion_tokens": cap,
        "top_provider": {"context_length": window, "max_completion_tokens": cap, "is_moderated": False},
    }


def alias_body(entry: ModelEntry, created: int) -> dict[str, Any]:
    """A model alias: its configured window and output cap, and its prices (unpriced models are counted
    as free by the gateway, so they are listed at "0", as `usage.cost` will say)."""
    body = _base(entry.alias, "model", created, entry.context_window, entry.output_cap())
    pricing = {
        "prompt": usd_per_token(entry.input_usd_per_mtok),
        "completion": usd_per_token(entry.output_usd_per_mtok),
    }
    if entry.cached_input_usd_per_mtok is not None:
        pricing["input_cache_read"] = usd_per_token(entry.cached_input_usd_per_mtok)
    body["pricing"] = pricing
    body["moa"] = {"purpose": entry.purpose}
    return body


def pipeline_body(catalogue: Catalogue, pipeline_id: str, created: int) -> dict[str, Any]:
    """A pipeline: the smallest window among the models its run may send the conversation to (null when
    none of them has one configured), the output cap of its aggregator chain, and its topology."""
    pipeline = catalogue.pipelines[pipeline_id]
    models = catalogue.models
    window = _smallest([models[a].context_window for a in catalogue.on_path(pipeline_id)])
    final_chain = catalogue.fallback_chain(pipeline.aggregator, pipeline.aggregator_fallbacks)
    cap = _smallest([models[a].output_cap() for a in final_chain])
    body = _base(pipeline_id, "pipeline", created, window, cap)
    body["moa"] = {
        "layers": [list(layer.proposers) for layer in pipeline.layers],
        "aggregator": pipeline.aggregator,
        "aggregator_fallbacks": list(pipeline.aggregator_fallbacks),
        "aggregation": pipeline.policy.aggregation,
    }
    return body


def model_bodies(catalogue: Catalogue, created: int) -> list[dict[str, Any]]:
    """Pipelines, then models, each in the config's order."""
    return [pipeline_body(catalogue, pid, created) for pid in catalogue.pipelines] + [
        alias_body(entry, created) for entry in catalogue.models.values()
    ]
