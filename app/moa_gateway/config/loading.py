"""Loading the config file: YAML, `${VAR}` and `${VAR:-default}` expansion, errors naming the field."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from moa_gateway.config.schema import GatewayConfig


class ConfigError(Exception):
    """The config file is unusable; the message names the file and the field."""


# What a new user needs when no config was found (a wheel installed anywhere has no config/moa.yaml).
MISSING_CONFIG_HINT = (
    "Name one with --config PATH or MOA_CONFIG=PATH, serve the built-in demo with `moa-gateway serve --demo`, "
    "or write a starter config with `moa-gateway init`"
)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def _expand(value: Any, where: str, env: dict[str, str]) -> Any:
    """Expand `${VAR}` and `${VAR:-default}` in every string of the parsed YAML."""
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}" if where else str(k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}.{i}", env) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set")

    return _VAR.sub(substitute, value)


def parse_config(data: Any, source: str, env: dict[str, str] | None = None) -> GatewayConfig:
    """Validate already-parsed YAML; errors name `source` and the field."""
    env = dict(os.environ) if env is None else env
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with providers, models, pipelines")
    try:
        expanded = _expand(data, "", env)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        return GatewayConfig.model_validate(expanded)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"] if part not in ("openai", "simulated"))
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{field}: {message}" if field else message)
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_config(path: Path, env: dict[str, str] | None = None) -> GatewayConfig:
    """Read, expand and validate the config file; a missing file's error says how to name or make one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        hint = f". {MISSING_CONFIG_HINT}" if isinstance(exc, FileNotFoundError) else ""
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror}){hint}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, str(path), env)
