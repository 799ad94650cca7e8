"""Provider kinds: each config `type` has one kind that says everything about it, so a new type is one
kind plus its config model."""

from __future__ import annotations

import typing

from moa_gateway.config import parse_config
from moa_gateway.config.schema import Provider
from moa_gateway.core.ports import ProviderEndpoint
from moa_gateway.upstream.providers.kinds import KINDS, connection_caps, endpoints_of, secrets_of


def test_every_provider_type_the_config_accepts_has_a_kind() -> None:
    union = typing.get_args(typing.get_args(Provider)[0])
    types = {typing.get_args(model.model_fields["type"].annotation)[0] for model in union}
    assert types == set(KINDS)


CONFIG = parse_config(
    {
        "providers": {
            "remote": {
                "type": "openai",
                "base_url": "https://user:pass-word@api.example.test:8443/v1?key=query-secret",
                "api_key": "sk-remote-key",
                "headers": {"X-Api-Token": "tok-123456"},
                "max_connections": 7,
            },
            "sim": {"type": "simulated"},
        },
        "models": {"a": {"provider": "remote"}, "b": {"provider": "sim"}},
    },
    "kinds",
)


def test_each_kind_names_its_endpoint_cap_and_secrets() -> None:
    assert endpoints_of(CONFIG) == {
        "remote": ProviderEndpoint("openai", "api.example.test", 8443),
        "sim": ProviderEndpoint("moa.simulator"),
    }
    assert connection_caps(CONFIG) == {"remote": 7}
    secrets = secrets_of(CONFIG)
    for secret in ["sk-remote-key", "tok-123456", "pass-word", "user:pass-word", "query-secret"]:
        assert secret in secrets
