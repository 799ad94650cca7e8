"""The config as the MoA core sees it: a catalogue of models (params, fallbacks) and pipelines."""

from __future__ import annotations

from app.config.schema import GatewayConfig
from app.core.plan import Catalogue, LayerPlan, ModelEntry, PipelineEntry


def catalogue_of(config: GatewayConfig) -> Catalogue:
    return Catalogue(
        models={
            alias: ModelEntry(alias, dict(model.params), list(model.fallbacks))
            for alias, model in config.models.items()
        },
        pipelines={
            pid: PipelineEntry(
                layers=[LayerPlan(list(lc.proposers), lc.min_proposers, lc.deadline_s) for lc in p.layers],
                aggregator=p.aggregator,
                prompt=p.aggregator_prompt,
                aggregator_fallbacks=list(p.aggregator_fallbacks),
                best_proposal_fallback=p.on_aggregator_failure == "best_proposal",
                deadline_s=p.deadline_s,
            )
            for pid, p in config.pipelines.items()
        },
    )
