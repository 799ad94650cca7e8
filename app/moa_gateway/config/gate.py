"""A pipeline's `gate` in the config file: one model first, the panel only when it is unsure
(app/moa_gateway/core/gate.py), and the audit of a share of its passes (app/moa_gateway/eval/gate_audit.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class GateConfig(BaseModel):
    """One model first: the gate model answers as the aggregator would; when it is confident enough its
    answer is the response, else the pipeline runs. A share of passes can be audited after the response."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # as every config model: a typo stops the start

    model: str = Field(
        description="The model alias that answers first, as the aggregator would: the client's messages "
        "and every field, tools included"
    )
    confidence: Literal["agreement", "self_report"] = Field(
        default="agreement",
        description="agreement: the share of `samples` answers (sampled at once, different seeds) that "
        "agree, as early exit measures it; self_report: the confidence the model gives on a last line "
        "`Confidence: 0.83` (asked for in the system message, stripped from the answer; missing or "
        "malformed counts as 0)",
    )
    samples: int = Field(
        default=3,
        ge=1,
        le=16,
        description="confidence: agreement: answers sampled at once (at least 2); self_report makes one call",
    )
    threshold: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="At or above this confidence the gate's answer is the response; below, the pipeline runs",
    )
    match: Literal["normalized", "similarity"] = Field(
        default="normalized",
        description="confidence: agreement: how samples are compared (normalized: equal after case, "
        "space and punctuation folding; similarity: token-set overlap >= `similarity`)",
    )
    similarity: float = Field(
        default=0.9, gt=0, le=1, description="Token-set similarity for match: similarity"
    )
    audit_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of passed requests that also run the whole pipeline after the response, for "
        "the judge to compare with the gate's answer",
    )
    judge: str | None = Field(
        default=None, description="The model alias that judges audits (needed when audit_rate > 0)"
    )
    audit_max_concurrent: int = Field(
        default=4, ge=1, description="Audits of the pipeline at once; beyond, new ones are dropped"
    )

    @model_validator(mode="after")
    def _consistent(self) -> GateConfig:
        if self.confidence == "agreement" and self.samples < 2:
            raise ValueError("samples: at least 2 for confidence: agreement")
        if self.audit_rate > 0 and self.judge is None:
            raise ValueError("judge: needed when audit_rate > 0")
        return self
