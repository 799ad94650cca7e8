"""docs/reference/extension.md: the `moa` objects of a request and of a response, field by field.

The request object is a pydantic model (`MoaOptions`), walked like the config. The response object is
built by hand in `app/moa_gateway/wire/chat.py` (`moa_body`, `_call_body`, `early_exit_body`,
`budget_body`, `agreement_body`, `rankings_body`, `gate_body`, `cache_hit_body`), so its fields are declared in the tables below, and tests/unit/test_docs_reference.py
checks each table's keys against what those functions write for a result with every field set."""

from __future__ import annotations

from typing import get_args

from moa_gateway.core.failures import FailureKind
from moa_gateway.core.reports import Degraded, Skipped
from moa_gateway.core.types import CallStatus, Role
from moa_gateway.wire.errors import call_error_code, shape_of
from moa_gateway.wire.requests import MoaOptions
from scripts.docgen.fields import description
from scripts.docgen.markdown import GENERATED_NOTE, code, default_text, field_type, table


def _values(values: object) -> str:
    return ", ".join(code(str(v)) for v in values)  # type: ignore[attr-defined]


# Roles of the calls a client's run makes (in `moa.calls`).
IN_A_RUN = ("proposer", "aggregator", "reviewer", "gate", "direct")

# (field, type, present, description): one row per key the wire writes.
RESPONSE_FIELDS = [
    ("pipeline", "string or null", "always", "The pipeline id; null for a model alias (one direct call)"),
    (
        "answered_by",
        "string",
        "always",
        "The model alias whose text is the answer: the aggregator (or "
        "the fallback that stood in), the proposal `select` or an early exit chose, or the proposal that "
        "stood in for a failed aggregator",
    ),
    (
        "cost_usd",
        "number",
        "always",
        "US dollars, summed over every upstream call of the request (also "
        "in the `x-moa-cost-usd` header of JSON answers)",
    ),
    (
        "dropped",
        "list of strings",
        "always",
        "Proposers (each slot's own model) whose slot gave no answer, its fallbacks tried",
    ),
    (
        "calls",
        "list of call objects",
        "always",
        "One per upstream call the request made, proposer layers first, then the final phase (table below)",
    ),
    (
        "references_reused",
        "boolean (`true`)",
        "when set",
        "The proposals are the user turn's, kept from an earlier call (`fanout: user_turn`): no "
        "proposer was called, and `calls` lists only the calls made",
    ),
    (
        "dropped_tools",
        "list of strings",
        "`/v1/responses`, when hosted tools were dropped",
        "The types of the hosted tools (`web_search`, ...) left out under `MOA_HOSTED_TOOLS=drop`: "
        "the model answered with the function tools it had",
    ),
    (
        "degraded",
        "string",
        "when set",
        "Why the answer is not the aggregator's own, checked answer: " + _values(Degraded),
    ),
    (
        "cache",
        "object",
        "when the answer came from the response cache (`x-moa-cache: hit`)",
        "What the replayed answer saved (table below); `usage` and `cost_usd` are zero and `calls` empty",
    ),
    (
        "early_exit",
        "object",
        "when the pipeline has `early_exit` and it applied, and on every run of a "
        "pipeline with `early_exit.escalate_to`",
        "What the early-exit policy did (table below)",
    ),
    (
        "budget",
        "object",
        "when a budget applied (`max_cost_usd` of the pipeline or the request)",
        "The estimate made before any call and what was cut to fit (table below)",
    ),
    (
        "agreement",
        "object or null",
        "every pipeline response (absent for a model alias)",
        "How far the last layer's proposals agreed (table below); null with fewer than two proposals",
    ),
    (
        "rankings",
        "object",
        "`aggregation: rank`, when the reviewers ranked",
        "The peer ranking: each proposal's Borda points and rank, and the rankings dropped (table below)",
    ),
    (
        "gate",
        "object",
        "on every run of a pipeline with a `gate`",
        "What the gate decided: its answer stood, or the pipeline ran (table below)",
    ),
]
CALL_FIELDS = [
    (
        "layer",
        "integer",
        "always",
        "1.. for proposer layers; the number of layers + 1 for the final "
        "phase; 0 for a model alias's direct call and a gate's calls",
    ),
    (
        "role",
        "string",
        "always",
        "`proposer`, `aggregator` (every call of the final phase), `reviewer` (a ranking for "
        "`aggregation: rank`), `gate` (a pipeline's gate model, first) or `direct`; the other roles ("
        + _values(r for r in get_args(Role) if r not in IN_A_RUN)
        + ") label calls made outside a client's run, in the metrics and logs",
    ),
    ("model", "string", "always", "The model alias called"),
    (
        "status",
        "string",
        "always",
        _values(get_args(CallStatus)) + " (`skipped`: not called, its "
        "circuit open or its input over the context window)",
    ),
    ("latency_ms", "number", "always", "How long the call took"),
    ("ttft_ms", "number or null", "always", "Time to the first token, for streamed calls; else null"),
    ("prompt_tokens", "integer", "always", "Input tokens, as the provider reported them (else counted)"),
    ("completion_tokens", "integer", "always", "Output tokens, as the provider reported them (else counted)"),
    (
        "usage_estimated",
        "boolean",
        "always",
        "The provider reported no usage: the gateway counted words "
        "and punctuation marks (`app/moa_gateway/core/tokens.py`)",
    ),
    ("cost_usd", "number", "always", "Tokens times the model's `price`, in US dollars"),
    (
        "cached_tokens",
        "integer",
        "when the provider read part of the prompt from its cache",
        "Prompt tokens served from the provider's cache, priced at the model's `price.cached_input_per_mtok`",
    ),
    ("error", "string", "failed calls", "What went wrong, naming the model alias, never a key"),
    ("error_code", "string or null", "failed calls", "The failure's code (table below)"),
    ("fallback_for", "string", "a fallback's call", "The model this call stood in for"),
    (
        "tool_calls",
        "integer",
        "when the answer made tool calls",
        "How many (of its first choice): which call acted",
    ),
    ("text", "string", "proposers' calls, with `moa.include_proposals`", "The proposer's answer text"),
]
EARLY_EXIT_FIELDS = [
    (
        "layer",
        "integer or null",
        "always",
        "The layer whose answers agreed; null when no layer agreed and `escalate_to` answered",
    ),
    (
        "agreement",
        "number or null",
        "always",
        "The share of that layer's answers matching the most common one; null as `layer`",
    ),
    (
        "skipped",
        "string or null",
        "always",
        _values(Skipped) + "; null when nothing was left to skip "
        "(the last layer agreed under `escalate_to`, or no layer agreed)",
    ),
    ("escalated", "boolean", "always", "The proposers disagreed and `escalate_to` aggregated instead"),
]
BUDGET_FIELDS = [
    ("max_usd", "number", "always", "The budget: the lower of the request's and the pipeline's"),
    ("estimated_usd", "number", "always", "The estimate, before any call, of the plan that ran"),
    (
        "actions",
        "list of strings",
        "always",
        "What was cut to fit, in order (`dropped proposer A (layer "
        "N)`, `capped proposers at max_tokens N`, `aggregator alone`); empty when the plan fitted",
    ),
    ("actual_usd", "number or null", "always", "What the run cost"),
]
AGREEMENT_FIELDS = [
    (
        "score",
        "number",
        "always",
        "The share of the proposals matching the most common answer: 1.0 when all match, 1/n when all n "
        "differ (early exit's measure)",
    ),
    (
        "method",
        "string",
        "always",
        "How answers were compared: the pipeline's `early_exit.match` (`normalized` or `similarity`), "
        "`normalized` without early exit",
    ),
    (
        "layer",
        "integer",
        "always",
        "The proposer layer measured: the last that ran (the one an early exit stopped at; a reused "
        "user turn's)",
    ),
    ("proposals", "integer", "always", "How many answers were measured (two or more)"),
    (
        "dissent",
        "list of strings",
        "always",
        "The proposers (models, slot order) whose answers do not match the most common one, when two or "
        "more share it; else empty",
    ),
]
RANKINGS_FIELDS = [
    (
        "proposals",
        "list of objects",
        "always",
        "Every proposal, best first: `proposal` (its index among the last layer's answers), `model`, "
        "`points` (Borda count) and `rank` (1 is the best)",
    ),
    ("reviewers", "integer", "always", "Rankings asked for"),
    ("counted", "integer", "always", "Rankings counted"),
    (
        "dropped",
        "list of objects",
        "always",
        "Rankings not counted: `reviewer` and `reason` (its call failed, or its ranking was malformed)",
    ),
    (
        "then",
        "string",
        "always",
        "What was done: `synthesize` (the aggregator read the `top_k` best) or `select` (the best "
        "proposal is the answer)",
    ),
    ("top_k", "integer", "always", "How many proposals the aggregator read (0 after a select)"),
]
GATE_FIELDS = [
    ("model", "string", "always", "The gate model (alias)"),
    ("method", "string", "always", "How its confidence was found: `agreement` or `self_report`"),
    (
        "confidence",
        "number",
        "always",
        "The share of its samples that agree, or the confidence it reported (0 when missing or malformed)",
    ),
    ("threshold", "number", "always", "The pipeline's `gate.threshold`"),
    (
        "passed",
        "boolean",
        "always",
        "Its answer is the response (no proposer or aggregator called); false: the pipeline ran",
    ),
    (
        "audited",
        "boolean",
        "always",
        "A pass sampled by `gate.audit_rate`: the pipeline runs after the response and a judge compares",
    ),
    ("reason", "string", "always", "Why, in words, with the confidence against the threshold"),
]
CACHE_FIELDS = [
    ("hit", "boolean (`true`)", "always", "The answer was replayed from the response cache: no upstream call"),
    ("saved_usd", "number", "always", "What the run that made the answer cost, in US dollars"),
    (
        "saved_usage",
        "object",
        "always",
        "That run's tokens: `prompt_tokens`, `completion_tokens`, `total_tokens`",
    ),
    ("age_s", "number", "always", "Seconds since the answer was stored"),
]
TABLES = {
    "The response's `moa`": RESPONSE_FIELDS,
    "`moa.calls[i]`": CALL_FIELDS,
    "`moa.early_exit`": EARLY_EXIT_FIELDS,
    "`moa.budget`": BUDGET_FIELDS,
    "`moa.agreement`": AGREEMENT_FIELDS,
    "`moa.rankings`": RANKINGS_FIELDS,
    "`moa.gate`": GATE_FIELDS,
    "`moa.cache`": CACHE_FIELDS,
}


# Kinds a whole request fails of, never one call.
REQUEST_ONLY = {
    FailureKind.INVALID_REQUEST,
    FailureKind.MODEL_NOT_FOUND,
    FailureKind.NOT_FOUND,
    FailureKind.CONTEXT_LENGTH_EXCEEDED,
    FailureKind.BUDGET_EXCEEDED,
    FailureKind.UPSTREAM,
}


def _request_table() -> str:
    rows = [
        [code(name), field_type(field), default_text(field), description(MoaOptions, name, field)]
        for name, field in MoaOptions.model_fields.items()
    ]
    return table(["field", "type", "default", "description"], rows)


def _error_codes() -> str:
    """A failed call's `error_code` by failure kind, from the one mapping in wire/errors.py."""
    rows = [
        [code(kind.value), code(str(call_error_code(kind))), str(shape_of(kind).status)]
        for kind in FailureKind
        if call_error_code(kind) is not None and kind not in REQUEST_ONLY
    ]
    return table(["failure kind", "`error_code`", "HTTP status when the request fails of it"], rows)


def render() -> str:
    out = [
        "# The `moa` extension reference\n",
        GENERATED_NOTE,
        "moa-gateway adds one object to OpenAI's wire, named `moa`, both ways. The OpenAI SDK sends it "
        'with `extra_body={"moa": {...}}` and hands it back in `model_extra["moa"]`. It is the same '
        "on `/v1/chat/completions`, `/v1/responses` and `/v1/completions`; in streams the response's "
        "`moa` comes on the usage chunk (`stream_options.include_usage`), or in `response.completed`. "
        "Examples: [HTTP API](http-api.md#the-moa-extension).\n",
        "## The request's `moa`\n",
        "From `MoaOptions` in `app/moa_gateway/wire/requests.py`. Unknown keys are a 400, so a typo "
        "does not pass silently.\n",
        _request_table(),
    ]
    for title, rows in TABLES.items():
        out.append(f"## {title}\n")
        out.append(table(["field", "type", "present", "description"], [[code(r[0]), *r[1:]] for r in rows]))
    out += [
        "## `error_code` of a failed call\n",
        "A call's failure kind (also the `kind` label of `moa_upstream_errors_total`) and its "
        "`error_code`, from `app/moa_gateway/wire/errors.py`.\n",
        _error_codes(),
    ]
    return "\n".join(out)
