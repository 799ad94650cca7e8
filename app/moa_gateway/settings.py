"""Process settings from the environment (`MOA_` prefix); the model topology lives in the YAML config."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOA_", extra="ignore")

    config: Path = Field(default=Path("config/moa.yaml"), description="Path of the YAML config")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    keep_alive_s: int = Field(
        default=75,
        ge=1,
        description="Idle keep-alive of client connections; keep it above your load balancer's",
    )
    sse_keepalive_s: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between `: keep-alive` comments while a stream waits on proposers; "
        "also how long a stream may wait before its 200 status is committed.",
    )

    api_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated gateway keys; when set, /v1/* requires one as a bearer token",
    )
    allow_unauthenticated: bool = Field(
        default=False, description="Allow listening on a non-loopback address with no gateway keys"
    )
    max_concurrent_requests: int = Field(
        default=256, ge=1, description="Per worker; above it: 429 with Retry-After"
    )
    workers: int | Literal["auto"] = Field(
        default=1,
        validation_alias=AliasChoices("workers", "MOA_WORKERS", "WEB_CONCURRENCY"),
        description="Worker processes on the one port (`auto`: one per CPU the process may use, "
        "within a cgroup CPU limit)",
    )
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="Larger bodies: 413")
    header_timeout_s: float = Field(
        default=20.0,
        gt=0,
        description="A request head must arrive within this from the connection's (or the request's) "
        "first byte, else the connection is closed",
    )
    body_timeout_s: float = Field(
        default=20.0, gt=0, description="A request body must arrive within this once its head did: 408"
    )
    max_header_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Request line plus headers, in all; larger: 431"
    )
    upstream_max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Largest non-streamed upstream answer, decompressed; larger: a bad_response failure",
    )
    upstream_max_event_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest line or event of an upstream event stream, decompressed",
    )
    upstream_max_stream_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Largest whole streamed upstream answer, decompressed",
    )
    max_log_value_chars: int = Field(
        default=2048, ge=64, description="Client- or upstream-supplied values in log lines are cut here"
    )
    max_messages: int = Field(default=1000, ge=1, description="Messages per request; more is a 400")
    max_tools: int = Field(
        default=128,
        ge=1,
        description="Tools (functions) one request may offer, as OpenAI allows; more is a 400 before any "
        "call, so a request with thousands of tools cannot hold a worker",
    )
    tool_result_chars: int = Field(
        default=4000, ge=100, description="A tool result longer than this reaches proposers cut in the middle"
    )
    schema_check_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="A `response_format` schema check (the schema, or one answer) without a verdict by then "
        "is given up and the answer passed on unchecked (app/moa_gateway/service/schema_check)",
    )
    schema_check_processes: int = Field(
        default=2,
        ge=1,
        description="Worker processes per gateway process for `response_format` checks, started on first use",
    )
    max_layers: int = Field(default=4, ge=1, description="Limit on a request's own `moa.layers`")
    max_proposers: int = Field(default=8, ge=1, description="Limit on proposers per layer in `moa.layers`")
    responses_store: SecretStr = Field(
        default=SecretStr("memory"),
        description="Where `/v1/responses` keeps stored responses: `memory` (this worker, bounded), "
        "`sqlite:///path/to/file.db` (shared by the workers of one host), `redis://...` (shared by "
        "replicas; a secret, as the URL may hold a password) or `none`",
    )
    responses_store_max_entries: int = Field(
        default=10_000, ge=1, description="Memory and SQLite stores: entries kept"
    )
    responses_store_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Memory and SQLite stores: bytes kept in all (oldest evicted first); every store: "
        "largest entry",
    )
    responses_store_ttl_s: float = Field(
        default=86_400, gt=0, description="A stored response is gone this long after it was stored"
    )
    cache: SecretStr = Field(
        default=SecretStr("memory"),
        description="Where the exact response cache (a pipeline's or model's `cache: {ttl_s}`) keeps "
        "answers: `memory` (this worker, least recently used evicted past MOA_CACHE_MAX_BYTES), "
        "`sqlite:///path/to/file.db` (shared by the workers of one host) or `redis://...` (shared by "
        "replicas; a secret, as the URL may hold a password)",
    )
    cache_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Memory and SQLite caches: bytes of answers kept in all (least recently used evicted "
        "first); every cache: the largest answer kept",
    )
    hosted_tools: Literal["drop", "reject"] = Field(
        default="drop",
        description="`/v1/responses` tools OpenAI runs itself (`web_search`, ...): `drop` answers without "
        "them and names them in `moa.dropped_tools`; `reject` is a 400 naming the first",
    )
    upstream_transport: Literal["httptools", "aiohttp", "httpx"] = Field(
        default="httptools",
        description="The upstream HTTP client: the gateway's own keep-alive connections parsed by "
        "httptools (the least CPU per call; a proxied URL goes through aiohttp), aiohttp, or httpx",
    )
    upstream_max_connections: int | None = Field(
        default=None,
        ge=1,
        description="Upstream connections one worker may hold at once, across providers. Default: what "
        "admission can use, max_concurrent_requests x the widest layer (app/moa_gateway/upstream/pool.py)",
    )
    retry_budget: int = Field(default=4, ge=0, description="Upstream retries one request may spend in all")
    shutdown_grace_s: int = Field(
        default=30, ge=0, description="On SIGTERM, seconds given to in-flight requests"
    )
    tracing: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="OpenTelemetry traces over OTLP (`pip install 'moa-gateway[otel]'`); auto: on when "
        "OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set",
    )
    trace_content: bool = Field(
        default=False,
        validation_alias=AliasChoices(
            "trace_content", "MOA_TRACE_CONTENT", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
        ),
        description="Record prompts and answers on call spans (the GenAI conventions' opt-in content)",
    )

    @field_validator("workers")
    @classmethod
    def _positive_workers(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("workers is `auto` or at least 1")
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    def api_key_digests(self) -> list[str]:
        """SHA-256 hex digests of MOA_API_KEYS; keys are compared as digests, never stored in clear."""
        if self.api_keys is None:
            return []
        keys = [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]
        return [hashlib.sha256(k.encode()).hexdigest() for k in keys]
