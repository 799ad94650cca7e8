"""Descriptions the code does not carry yet (a field or flag without `description=`/`help=`), keyed by
the class that declares the field (or by command and flag), and examples for keys no shipped config
uses. The generator fails on a key with neither a description nor an example, so nothing is skipped;
moving a note into the code's own description makes it redundant (and the generator says so)."""

from __future__ import annotations

from typing import Any

FIELD_NOTES: dict[str, str] = {
    # config/schema.py
    "RetryPolicy.base_delay_s": "First backoff before a retry; it doubles per attempt, with full jitter",
    "RetryPolicy.max_delay_s": "Longest backoff between two attempts",
    "_ProviderBase.connect_timeout_s": "Deadline to open a connection to the upstream",
    "_ProviderBase.retries": "Retries of one call (the table below)",
    "OpenAIProvider.type": "The provider kind: any OpenAI-compatible Chat Completions API",
    "OpenAIProvider.base_url": "The API's base URL, up to `/v1`; credentials in it are sent as a Basic "
    "`Authorization` header, never in the URL",
    "OpenAIProvider.api_key": "Sent as a bearer token; local servers need none. Use `${VAR}`",
    "OpenAIProvider.headers": "Extra headers on every call (values that look secret are scrubbed from errors)",
    "SimulatedProvider.type": "The provider kind: the built-in offline simulator, no network",
    "SimulatedProvider.ttft_ms": "Time to first token, in milliseconds",
    "Price.input_per_mtok": "USD per million prompt tokens",
    "Price.output_per_mtok": "USD per million completion tokens",
    "CircuitBreakerConfig.cooldown_s": "How long an open breaker skips the model before one trial call",
    "ModelConfig.provider": "The provider (a key of `providers`) that serves the model",
    "ModelConfig.params": "Defaults sent upstream with every call (a client's fields win for the final "
    "call, these win for proposers); may hold `simulate: {...}` for the simulator",
    "ModelConfig.price": "USD per million tokens; without it the model costs 0 (one warning at start-up)",
    "ModelConfig.circuit_breaker": "The model's circuit breaker (per worker)",
    "Layer.proposers": "Model aliases answering in this layer, concurrently; an alias may repeat (Self-MoA)",
    "EarlyExitConfig.match": "normalized: equal after case, whitespace and punctuation folding; "
    "similarity: token-set (Jaccard) similarity >= `similarity`",
    "PipelineConfig.layers": "Proposer layers, in order; layer k sees layer k-1's answers",
    "PipelineConfig.aggregator": "The model alias that writes the final answer (the acting model)",
    "PipelineConfig.aggregator_prompt": "Replaces the paper's aggregate-and-synthesize prompt; keep "
    "`Responses from models:` last",
    "PipelineConfig.aggregator_fallbacks": "Aliases tried, in order, before the aggregator model's own "
    "fallbacks",
    "PipelineConfig.early_exit": "Stop early when a layer's proposers agree",
    "GatewayConfig.providers": "Upstream APIs, by name",
    "GatewayConfig.models": "Upstream models, by alias; each alias is also a model id clients may ask for",
    "GatewayConfig.pipelines": "MoA pipelines, by id; each is served as a model id",
    "GatewayConfig.auth": "Gateway keys (or set MOA_API_KEYS)",
    # settings.py
    "Settings.host": "Address to listen on; a non-loopback one needs gateway keys or "
    "MOA_ALLOW_UNAUTHENTICATED",
    "Settings.port": "Port to listen on",
    "Settings.log_level": "Log level",
    "Settings.log_format": "`text`, or `json` (JSON lines with the same fields)",
}

# Examples for config keys that no file under config/ sets, keyed like FIELD_NOTES.
FIELD_EXAMPLES: dict[str, Any] = {
    "_ProviderBase.retries": {"max_attempts": 3, "base_delay_s": 0.25},
    "ModelConfig.circuit_breaker": {"failure_threshold": 5, "cooldown_s": 30},
    "ModelConfig.context_window": 8192,
    "ModelConfig.modalities": ["text"],
    "ModelConfig.fallbacks": ["llama"],
    "Price.cached_input_per_mtok": 0.6,
    "Layer.min_proposers": 2,
    "Layer.deadline_s": 20,
    "PipelineConfig.deadline_s": 60,
    "PipelineConfig.aggregator_fallbacks": ["llama"],
    "PipelineConfig.shadow": {"baseline": "llama", "judge": "qwen", "sample_rate": 0.02},
    "PipelineConfig.early_exit": {"agreement": 1.0, "escalate_to": "strong"},
    "PipelineConfig.max_cost_usd": 0.05,
    "PipelineConfig.reference_max_tokens": 400,
    "EarlyExitConfig.escalate_to": "strong",
    "ShadowConfig.baseline": "gpt-4o",
    "ShadowConfig.judge": "gpt-4.1",
    "RankConfig.reviewers": ["qwen", "llama", "mixtral"],
    "CacheConfig.ttl_s": 3600,
    "OpenAIProvider.api_key": "${TOGETHER_API_KEY}",
    "OpenAIProvider.max_connections": 64,
    "_ProviderBase.first_token_timeout_s": 30,
    "AuthConfig.api_key_sha256": ["<64 hex digits from moa-gateway hash-key>"],
    "GatewayConfig.auth": {"api_key_sha256": ["..."]},
}

# CLI arguments without `help=`, keyed "command argument".
CLI_NOTES: dict[str, str] = {
    "check-config path": "the config file to validate",
    "eval --mode": "pairwise (both answers, twice, positions swapped) or single (each rated 1-10)",
}
