"""What a model id resolves to (a pipeline's layers and aggregator chain, or one model), with a
request's topology override checked against the catalogue and the limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from moa_gateway.core.agreement import Match
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.prompts import TURN_NOTE, Injection, Placement
from moa_gateway.core.types import Role

ToolsMode = Literal["advise", "bypass"]
# `every_call`: the proposers answer on every call. `user_turn`: once per user turn, their answers kept
# for the calls of an agent loop that only add assistant and tool messages (app/moa_gateway/core/fanout.py).
Fanout = Literal["every_call", "user_turn"]
# What a model alias is for: `chat` (offered wherever a model is picked), `judge` (the eval's or a shadow
# evaluation's judge), `embeddings`. Descriptive: any alias still answers any endpoint it can.
Purpose = Literal["chat", "judge", "embeddings"]


def output_cap(params: dict[str, Any]) -> int | None:
    """The output tokens call parameters allow (`max_completion_tokens`, else `max_tokens`), if they say."""
    cap = params.get("max_completion_tokens") or params.get("max_tokens")
    return cap if isinstance(cap, int) and not isinstance(cap, bool) else None


@dataclass(frozen=True)
class ModelEntry:
    """An upstream model as the core sees it: its configured params and fallbacks."""

    alias: str
    params: dict[str, Any] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)
    text_only: bool = False  # configured `modalities: [text]`: non-text content parts are replaced
    context_window: int | None = None  # tokens the model reads at most (input and output)
    input_usd_per_mtok: float = 0.0  # for cost estimates before a call
    output_usd_per_mtok: float = 0.0
    cached_input_usd_per_mtok: float | None = None  # prompt tokens read from the provider's cache
    purpose: Purpose = "chat"

    def output_cap(self) -> int | None:
        """The output tokens its configured `params` allow, if they say."""
        return output_cap(self.params)


@dataclass(frozen=True)
class EarlyExit:
    """Stop a run when a layer's answers agree (see app/moa_gateway/core/agreement.py)."""

    agreement: float = 1.0  # share of a layer's answers that must match the most common one
    match: Match = "normalized"
    similarity: float = 0.9  # for match `similarity`
    escalate_to: str | None = None  # the aggregator when proposers disagree; agreed: the pipeline's own


RankThen = Literal["synthesize", "select"]


@dataclass(frozen=True)
class Ranking:
    """`aggregation: rank` (app/moa_gateway/core/final/rank.py): who ranks the proposals, how many of
    the best the aggregator reads, or whether the best one is the answer."""

    reviewers: tuple[str, ...] | None = None  # None: the last layer's proposers, each its own excluded
    top_k: int = 2  # the best proposals the aggregator reads (`then: synthesize`)
    then: RankThen = "synthesize"  # or `select`: the best proposal is the answer, where one may be


GateConfidence = Literal["agreement", "self_report"]


@dataclass(frozen=True)
class Gate:
    """One model first (app/moa_gateway/core/gate.py): its answer is the response when its confidence
    reaches `threshold`; below, the pipeline runs."""

    model: str
    confidence: GateConfidence = "agreement"
    samples: int = 3  # answers sampled at once for `agreement` (self_report makes one call)
    threshold: float = 0.8
    match: Match = "normalized"  # how samples are compared (app/moa_gateway/core/agreement.py)
    similarity: float = 0.9


@dataclass(frozen=True)
class Policy:
    """How a pipeline spends: early exit, cost budget, proposers' output cap, aggregation, how often the
    proposers answer, and where references go."""

    early_exit: EarlyExit | None = None
    max_cost_usd: float | None = None
    reference_max_tokens: int | None = None
    aggregation: str = "synthesize"  # a name of core.final.FINALIZERS (the config checks it)
    window: int = 3  # references per aggregation round, for `sequential`
    fanout: Fanout = "every_call"
    references: Placement = "system"
    rank: Ranking = field(default_factory=Ranking)  # for `aggregation: rank`
    gate: Gate | None = None  # one model first, the panel only when it is unsure

    def injection(self, *, final: bool) -> Injection:
        """How references go in, for the proposers of a later layer or for the final phase: under
        `user_turn`, the final phase's say that they predate the turn's tool calls and results."""
        note = TURN_NOTE if final and self.fanout == "user_turn" else None
        return Injection(self.references, note)


@dataclass(frozen=True)
class LayerPlan:
    """One proposer layer, as configured and as planned."""

    proposers: list[str]
    min_proposers: int = 1
    deadline_s: float | None = None


@dataclass(frozen=True)
class PipelineEntry:
    layers: list[LayerPlan]
    aggregator: str
    prompt: str
    aggregator_fallbacks: list[str] = field(default_factory=list)
    best_proposal_fallback: bool = False
    deadline_s: float | None = None
    tools_mode: ToolsMode = "advise"
    policy: Policy = field(default_factory=Policy)


@dataclass(frozen=True)
class Catalogue:
    """Every model and pipeline a request may name (built from the config by `app/moa_gateway/config/topology`)."""

    models: dict[str, ModelEntry]
    pipelines: dict[str, PipelineEntry]

    def fallback_chain(self, alias: str, extra: list[str] | None = None) -> list[str]:
        """The model, then `extra`, then its own fallbacks, each once."""
        return list(dict.fromkeys([alias, *(extra or []), *self.models[alias].fallbacks]))

    def on_path(self, pipeline_id: str) -> list[str]:
        """Every model a pipeline's run may call with the conversation: each proposer and its fallbacks,
        the aggregator chain, and the model escalated to when proposers disagree (each once)."""
        pipeline = self.pipelines[pipeline_id]
        aliases = [a for layer in pipeline.layers for p in layer.proposers for a in self.fallback_chain(p)]
        aliases += self.fallback_chain(pipeline.aggregator, pipeline.aggregator_fallbacks)
        early = pipeline.policy.early_exit
        if early is not None and early.escalate_to is not None:
            aliases += self.fallback_chain(early.escalate_to)
        return list(dict.fromkeys(aliases))


@dataclass(frozen=True)
class OverrideLimits:
    max_layers: int = 4
    max_proposers: int = 8


@dataclass(frozen=True)
class TopologyOverride:
    """A request's own proposer layers and/or aggregator for a pipeline."""

    layers: list[list[str]] | None = None
    aggregator: str | None = None


@dataclass(frozen=True)
class Plan:
    """A pipeline's run, or one upstream model's (no layers, role `direct`)."""

    model_id: str
    pipeline: str | None
    layers: list[LayerPlan]
    final_chain: list[str]  # the aggregator (or the direct model), then its fallbacks
    prompt: str = ""
    deadline_s: float | None = None
    best_proposal_fallback: bool = False
    tools_mode: ToolsMode = "advise"  # with a forced tool choice: proposers still advise, or are skipped
    policy: Policy = field(default_factory=Policy)

    @property
    def final_role(self) -> Role:
        return "aggregator" if self.pipeline else "direct"

    @property
    def final_layer(self) -> int:
        return len(self.layers) + 1 if self.pipeline else 0


def quoted(value: str, limit: int = 200) -> str:
    """A client-supplied value for an error message: repr-quoted, cut so a huge value is not echoed."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def make_plan(
    catalogue: Catalogue,
    model_id: str,
    override: TopologyOverride | None = None,
    limits: OverrideLimits | None = None,
) -> Plan:
    """Resolve `model_id`; raises Failure (400 bad override, checked first; 404 unknown model)."""
    if override is not None:
        check_override(catalogue, override, limits or OverrideLimits())
    pipeline = catalogue.pipelines.get(model_id)
    if pipeline is None:
        if model_id not in catalogue.models:
            raise Failure(
                FailureKind.MODEL_NOT_FOUND, f"The model {quoted(model_id)} does not exist", param="model"
            )
        if override is not None:
            raise Failure(
                FailureKind.INVALID_REQUEST,
                "moa.layers and moa.aggregator need a pipeline as the model",
                param="moa",
            )
        return Plan(model_id, None, [], catalogue.fallback_chain(model_id))
    layers = list(pipeline.layers)
    aggregator = pipeline.aggregator
    if override is not None:
        if override.layers is not None:
            layers = [LayerPlan(list(proposers)) for proposers in override.layers]
        aggregator = override.aggregator or aggregator
    return Plan(
        model_id,
        model_id,
        layers,
        catalogue.fallback_chain(aggregator, pipeline.aggregator_fallbacks),
        pipeline.prompt,
        pipeline.deadline_s,
        pipeline.best_proposal_fallback,
        pipeline.tools_mode,
        pipeline.policy,
    )


def check_override(catalogue: Catalogue, override: TopologyOverride, limits: OverrideLimits) -> None:
    """Known aliases, within the caps; else a 400 naming the offending place."""

    def invalid(message: str, param: str) -> Failure:
        return Failure(FailureKind.INVALID_REQUEST, f"{param}: {message}", param=param)

    layers = override.layers
    if layers is not None:
        if not 1 <= len(layers) <= limits.max_layers:
            raise invalid(f"1 to {limits.max_layers} layers", "moa.layers")
        for i, layer in enumerate(layers):
            if not 1 <= len(layer) <= limits.max_proposers:
                raise invalid(f"1 to {limits.max_proposers} proposers", f"moa.layers[{i}]")
            for j, alias in enumerate(layer):
                if alias not in catalogue.models:
                    raise invalid(f"unknown model {quoted(alias)}", f"moa.layers[{i}][{j}]")
    aggregator = override.aggregator
    if aggregator is not None and aggregator not in catalogue.models:
        raise invalid(f"unknown model {quoted(aggregator)}", "moa.aggregator")
