"""Process settings from the environment (`MOA_` prefix); the model topology lives in the YAML config."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOA_", extra="ignore")

    config: Path = Field(default=Path("config/moa.yaml"), description="Path of the YAML config")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    sse_keepalive_s: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between `: keep-alive` comments while a stream waits on proposers; "
        "also how long a stream may wait before its 200 status is committed.",
    )
