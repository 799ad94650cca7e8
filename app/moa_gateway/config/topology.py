"""The config as the MoA core sees it: a catalogue of models (params, fallbacks) and pipelines."""

from __future__ import annotations

from moa_gateway.config.schema import GatewayConfig, PipelineConfig
from moa_gateway.core.plan import (
    Catalogue,
    EarlyExit,
    Gate,
    LayerPlan,
    ModelEntry,
    PipelineEntry,
    Policy,
    Ranking,
)


def catalogue_of(config: GatewayConfig) -> Catalogue:
    return Catalogue(
        models={
            alias: ModelEntry(
                alias,
                dict(model.params),
                list(model.fallbacks),
                text_only=model.modalities == ["text"],
                context_window=model.context_window,
                input_usd_per_mtok=model.price.input_per_mtok if model.price else 0.0,
                output_usd_per_mtok=model.price.output_per_mtok if model.price else 0.0,
                cached_input_usd_per_mtok=model.price.cached_input_per_mtok if model.price else None,
                purpose=model.purpose,
            )
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
                tools_mode=p.tools_mode,
                policy=_policy(p),
            )
            for pid, p in config.pipelines.items()
        },
    )


def _policy(pipeline: PipelineConfig) -> Policy:
    early, rank, gate = pipeline.early_exit, pipeline.rank, pipeline.gate
    return Policy(
        early_exit=None
        if early is None
        else EarlyExit(early.agreement, early.match, early.similarity, early.escalate_to),
        max_cost_usd=pipeline.max_cost_usd,
        reference_max_tokens=pipeline.reference_max_tokens,
        aggregation=pipeline.aggregation,
        window=pipeline.window,
        fanout=pipeline.fanout,
        references=pipeline.references,
        rank=Ranking()
        if rank is None
        else Ranking(None if rank.reviewers is None else tuple(rank.reviewers), rank.top_k, rank.then),
        gate=None
        if gate is None
        else Gate(gate.model, gate.confidence, gate.samples, gate.threshold, gate.match, gate.similarity),
    )
