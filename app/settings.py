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
