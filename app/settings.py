"""Process settings from the environment (`MOA_` prefix); the model topology lives in the YAML config."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
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
    max_concurrent_requests: int = Field(default=256, ge=1, description="Above it: 429 with Retry-After")
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
    max_messages: int = Field(default=1000, ge=1)
    max_layers: int = Field(default=4, ge=1, description="Limit on a request's own `moa.layers`")
    max_proposers: int = Field(default=8, ge=1, description="Limit on proposers per layer in `moa.layers`")
    upstream_transport: Literal["aiohttp", "httpx"] = Field(
        default="aiohttp",
        description="Connection pool under the httpx client: aiohttp's (faster under fan-out) or httpx's own",
    )
    retry_budget: int = Field(default=4, ge=0, description="Upstream retries one request may spend in all")
    shutdown_grace_s: int = Field(
        default=30, ge=0, description="On SIGTERM, seconds given to in-flight requests"
    )

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
