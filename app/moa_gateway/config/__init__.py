"""The YAML config: its schema, loading with `${VAR}` expansion, and the core's view of its topology."""

from moa_gateway.config.gate import GateConfig
from moa_gateway.config.loading import ConfigError, load_config, parse_config
from moa_gateway.config.schema import (
    AuthConfig,
    CircuitBreakerConfig,
    GatewayConfig,
    Layer,
    ModelConfig,
    OpenAIProvider,
    PipelineConfig,
    Price,
    Provider,
    RetryPolicy,
    ShadowConfig,
    SimulatedProvider,
)

__all__ = [
    "AuthConfig",
    "CircuitBreakerConfig",
    "ConfigError",
    "GateConfig",
    "GatewayConfig",
    "Layer",
    "ModelConfig",
    "OpenAIProvider",
    "PipelineConfig",
    "Price",
    "Provider",
    "RetryPolicy",
    "ShadowConfig",
    "SimulatedProvider",
    "load_config",
    "parse_config",
]
