"""The config file's schema: providers, models, pipelines and auth, strict so a typo stops the start."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from moa_gateway.config.gate import GateConfig
from moa_gateway.core.final import AGGREGATIONS, FINALIZERS
from moa_gateway.core.plan import Fanout, Purpose
from moa_gateway.core.prompts import DEFAULT_AGGREGATOR_PROMPT, Placement


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Strict):
    """Retries of one call: connect errors, 408, 409, 429 and 5xx; exponential backoff, full jitter."""

    max_attempts: int = Field(default=3, ge=1, description="Attempts per call, the first included")
    base_delay_s: float = Field(default=0.25, ge=0)
    max_delay_s: float = Field(default=4.0, ge=0)
    retry_after_cap_s: float = Field(default=10.0, ge=0, description="Longest Retry-After honoured")


class _ProviderBase(_Strict):
    timeout_s: float = Field(default=120.0, gt=0, description="Whole-call deadline, streamed or not")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    first_token_timeout_s: float | None = Field(
        default=None, gt=0, description="Streamed calls: deadline for the first chunk (default: timeout_s)"
    )
    idle_timeout_s: float = Field(
        default=30.0, gt=0, description="Streamed calls: longest gap between chunks"
    )
    retries: RetryPolicy = Field(default_factory=RetryPolicy)


class OpenAIProvider(_ProviderBase):
    """Any OpenAI-compatible Chat Completions API (OpenAI, Together, Groq, vLLM, Ollama...)."""

    type: Literal["openai"]
    base_url: str = Field(pattern=r"^https?://")
    api_key: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    stream_include_usage: bool = Field(
        default=True, description="Ask for `stream_options.include_usage` on streamed calls"
    )
    max_connections: int | None = Field(
        default=None,
        ge=1,
        description="Connections (calls in flight) to this provider at once, per worker; beyond, calls "
        "wait for one. Default: only the pool's total (MOA_UPSTREAM_MAX_CONNECTIONS)",
    )


class SimulatedProvider(_ProviderBase):
    """Built-in offline models: no network, deterministic answers."""

    type: Literal["simulated"]
    ttft_ms: float = Field(default=150.0, ge=0)
    tokens_per_s: float = Field(default=200.0, ge=0, description="0 means instant")


Provider = Annotated[OpenAIProvider | SimulatedProvider, Field(discriminator="type")]


class Price(_Strict):
    """USD per million tokens."""

    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)
    cached_input_per_mtok: float | None = Field(
        default=None, ge=0, description="Price of prompt tokens the provider served from its cache"
    )

    def cost_usd(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(cached_tokens, prompt_tokens) if self.cached_input_per_mtok is not None else 0
        cached_price = self.cached_input_per_mtok or 0.0
        return (
            (prompt_tokens - cached) * self.input_per_mtok
            + cached * cached_price
            + completion_tokens * self.output_per_mtok
        ) / 1e6


class CircuitBreakerConfig(_Strict):
    """After `failure_threshold` failures in a row, skip the model for `cooldown_s`, then try it once."""

    failure_threshold: int = Field(default=5, ge=0, description="0 disables the breaker")
    cooldown_s: float = Field(default=30.0, gt=0)


class CacheConfig(_Strict):
    """The exact response cache of a pipeline or a model alias requested by its id: an identical request
    of the same caller within `ttl_s` is answered from the cache, with no upstream call. Where answers
    are kept: MOA_CACHE (memory, SQLite or Redis)."""

    ttl_s: float = Field(gt=0, description="Seconds an answer is served from the cache after it was stored")


_CACHE_DESCRIPTION = (
    "Exact response cache for requests naming this id (off when absent): {ttl_s: seconds}. The key is "
    "the whole request but its answer-neutral fields (stream, stream_options, user, metadata...) and the "
    "caller's identity; a hit makes no upstream call and costs nothing"
)


class ModelConfig(_Strict):
    provider: str
    name: str | None = Field(default=None, description="Upstream model id; default: the alias")
    params: dict[str, Any] = Field(default_factory=dict)
    price: Price | None = None
    fallbacks: list[str] = Field(
        default_factory=list, description="Aliases tried, in order, if this model fails"
    )
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    context_window: int | None = Field(
        default=None,
        ge=1,
        description="Tokens the model reads at most: a call that would not fit is not made",
    )
    modalities: list[Literal["text", "image", "audio", "file"]] | None = Field(
        default=None,
        description="What the model reads; [text]: non-text content parts reach it as a short placeholder",
    )
    purpose: Purpose = Field(
        default="chat",
        description="What the model is for: chat, judge (of `moa-gateway eval` or a shadow evaluation) or "
        "embeddings. Shown in /v1/models (`moa.purpose`); the playground offers chat models only",
    )
    cache: CacheConfig | None = Field(
        default=None,
        description=_CACHE_DESCRIPTION + " (requests to the alias itself, not its calls inside a pipeline)",
    )


class Layer(_Strict):
    proposers: list[str] = Field(min_length=1)
    min_proposers: int = Field(default=1, ge=1, description="Answers the layer needs to go on")
    deadline_s: float | None = Field(
        default=None, gt=0, description="After this, go on with the answers in hand and cancel the rest"
    )

    @model_validator(mode="after")
    def _quorum_fits(self) -> Layer:
        if self.min_proposers > len(self.proposers):
            raise ValueError(
                f"min_proposers ({self.min_proposers}) exceeds the {len(self.proposers)} proposers"
            )
        return self


class ShadowConfig(_Strict):
    """Shadow evaluation on live traffic: after a sampled request was answered, the baseline answers the
    same conversation and the judge compares both answers, in the background."""

    baseline: str = Field(description="A model alias or another pipeline")
    judge: str = Field(description="The judging model alias (or pipeline)")
    sample_rate: float = Field(default=0.02, ge=0, le=1, description="Share of successful requests evaluated")
    max_concurrent: int = Field(
        default=4,
        ge=1,
        description="Shadow evaluations of the pipeline at once; beyond, new ones are dropped",
    )


class EarlyExitConfig(_Strict):
    agreement: float = Field(
        default=1.0, gt=0, le=1, description="Share of a layer's answers that must match"
    )
    match: Literal["normalized", "similarity"] = "normalized"
    similarity: float = Field(
        default=0.9, gt=0, le=1, description="Token-set similarity for match: similarity"
    )
    escalate_to: str | None = Field(default=None, description="The aggregator when proposers disagree")


class RankConfig(_Strict):
    """Peer ranking, for `aggregation: rank`: each reviewer ranks the other proposals, anonymised and
    shuffled; the rankings are added up (Borda count) and the best go on."""

    reviewers: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Model aliases that rank the proposals; default: the last layer's proposers, each "
        "ranking the others' (a reviewer never ranks a proposal its own model wrote)",
    )
    top_k: int = Field(
        default=2, ge=1, description="How many of the best proposals the aggregator reads (then: synthesize)"
    )
    then: Literal["synthesize", "select"] = Field(
        default="synthesize",
        description="synthesize: the aggregator writes the answer from the top_k best; select: the best "
        "proposal is the answer as it is (where a proposal may answer: no tools, schema or n > 1; else "
        "synthesize)",
    )


class PipelineConfig(_Strict):
    layers: list[Layer] = Field(min_length=1)
    aggregator: str
    aggregator_prompt: str = DEFAULT_AGGREGATOR_PROMPT
    aggregator_fallbacks: list[str] = Field(default_factory=list)
    on_aggregator_failure: Literal["error", "best_proposal"] = Field(
        default="error", description="best_proposal: answer with the first proposal of the last layer"
    )
    deadline_s: float | None = Field(default=None, gt=0, description="Whole-request deadline")
    shadow: ShadowConfig | None = Field(
        default=None, description="Evaluate against a baseline on live traffic"
    )
    early_exit: EarlyExitConfig | None = None
    max_cost_usd: float | None = Field(
        default=None, gt=0, description="Budget per request, checked before any call"
    )
    reference_max_tokens: int | None = Field(
        default=None, ge=1, description="Cap on proposers' output tokens"
    )
    aggregation: str = Field(
        default="synthesize",
        description="How the final answer is made: " + ", ".join(AGGREGATIONS),
        json_schema_extra={"enum": list(AGGREGATIONS)},
    )
    window: int = Field(default=3, ge=2, description="References per round, for aggregation: sequential")
    rank: RankConfig | None = Field(
        default=None,
        description="Peer ranking, for aggregation: rank (default reviewers, top_k 2, synthesize)",
    )
    tools_mode: Literal["advise", "bypass"] = Field(
        default="advise",
        description="When the client forces a tool call: proposers still advise, or the aggregator alone answers",
    )
    fanout: Fanout = Field(
        default="every_call",
        description="every_call: proposers answer on every call; user_turn: once per user turn, their "
        "answers reused while the conversation only adds assistant and tool messages (an agent loop)",
    )
    references: Placement = Field(
        default="system",
        description="Where the references go: system (the paper's: into the first system message) or "
        "before_last_user (a user message of their own just before the last user message, so the prompt "
        "before it is the same on every call and a provider's prefix cache keeps working)",
    )

    gate: GateConfig | None = Field(
        default=None, description="One model first: the pipeline runs only when it is unsure"
    )
    cache: CacheConfig | None = Field(default=None, description=_CACHE_DESCRIPTION)

    @field_validator("aggregation")
    @classmethod
    def _known_aggregation(cls, name: str) -> str:
        if name not in FINALIZERS:  # the registry itself: a strategy added there is accepted here
            raise ValueError(f"unknown aggregation {name!r}: one of {', '.join(FINALIZERS)}")
        return name

    @model_validator(mode="after")
    def _rank_fits(self) -> PipelineConfig:
        if self.rank is not None and self.aggregation != "rank":
            raise ValueError("rank: only with aggregation: rank")
        if self.aggregation == "rank":
            last = len(self.layers[-1].proposers)
            reviewers = None if self.rank is None else self.rank.reviewers
            # each reviewer must have two proposals to rank: a proposer sees the others' only
            needed = 3 if reviewers is None else 2
            if last < needed:
                why = " (each ranks the others' proposals)" if reviewers is None else ""
                raise ValueError(
                    f"aggregation: rank needs {needed} proposers in the last layer{why}, it has {last}"
                )
        return self


class AuthConfig(_Strict):
    api_key_sha256: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(
        default_factory=list, description="Gateway keys, as hex SHA-256 digests (`moa-gateway hash-key`)"
    )


class GatewayConfig(_Strict):
    providers: dict[str, Provider]
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    pipelines: dict[str, PipelineConfig] = Field(default_factory=dict)
    auth: AuthConfig = Field(default_factory=AuthConfig)

    @model_validator(mode="after")
    def _check_references(self) -> GatewayConfig:
        for alias, model in self.models.items():
            if model.provider not in self.providers:
                raise ValueError(f"models.{alias}.provider: unknown provider {model.provider!r}")
            for fallback in model.fallbacks:
                if fallback not in self.models or fallback == alias:
                    raise ValueError(f"models.{alias}.fallbacks: {fallback!r} is not another model")
        for pid, pipeline in self.pipelines.items():
            if pid in self.models:
                raise ValueError(f"pipelines.{pid}: the id is also a model alias")
            for i, layer in enumerate(pipeline.layers):
                for alias in layer.proposers:
                    if alias not in self.models:
                        raise ValueError(f"pipelines.{pid}.layers.{i}.proposers: unknown model {alias!r}")
            if pipeline.aggregator not in self.models:
                raise ValueError(f"pipelines.{pid}.aggregator: unknown model {pipeline.aggregator!r}")
            for alias in pipeline.aggregator_fallbacks:
                if alias not in self.models:
                    raise ValueError(f"pipelines.{pid}.aggregator_fallbacks: unknown model {alias!r}")
            reviewers = (pipeline.rank.reviewers if pipeline.rank else None) or []
            for alias in reviewers:
                if alias not in self.models:
                    raise ValueError(f"pipelines.{pid}.rank.reviewers: unknown model {alias!r}")
            escalate_to = pipeline.early_exit.escalate_to if pipeline.early_exit else None
            if escalate_to is not None and escalate_to not in self.models:
                raise ValueError(f"pipelines.{pid}.early_exit.escalate_to: unknown model {escalate_to!r}")
            if pipeline.gate is not None:
                for name in ("model", "judge"):
                    alias = getattr(pipeline.gate, name)
                    if alias is not None and alias not in self.models:
                        raise ValueError(f"pipelines.{pid}.gate.{name}: unknown model {alias!r}")
            if pipeline.shadow is not None:
                for name in ("baseline", "judge"):
                    target = getattr(pipeline.shadow, name)
                    if target == pid or (target not in self.models and target not in self.pipelines):
                        raise ValueError(
                            f"pipelines.{pid}.shadow.{name}: {target!r} is not a model or another pipeline"
                        )
        return self

    def upstream_name(self, alias: str) -> str:
        return self.models[alias].name or alias

    def provider_of(self, alias: str) -> str:
        return self.models[alias].provider

    def unpriced_models(self) -> list[str]:
        return [alias for alias, model in self.models.items() if model.price is None]
