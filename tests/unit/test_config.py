"""Config loading: the DESIGN.md shape, ${VAR} expansion, and errors that name the file and the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from moa_gateway.config import ConfigError, OpenAIProvider, load_config
from moa_gateway.upstream.providers.kinds import secrets_of
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]

VALID = """
providers:
  together:
    type: openai
    base_url: https://api.together.xyz/v1
    api_key: ${TOGETHER_API_KEY}
    timeout_s: 30
  local:
    type: openai
    base_url: ${VLLM_URL:-http://127.0.0.1:8001/v1}
models:
  qwen:
    provider: together
    name: Qwen/Qwen2.5-72B-Instruct-Turbo
    params: {temperature: 0.7, max_tokens: 512}
    price: {input_per_mtok: 1.2, output_per_mtok: 1.2}
  llama:
    provider: local
pipelines:
  moa:
    layers:
      - proposers: [qwen, llama]
    aggregator: qwen
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "moa.yaml"
    path.write_text(text)
    return path


def test_valid_config_expands_variables_and_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), env={"TOGETHER_API_KEY": "sk-together"})

    together = config.providers["together"]
    local = config.providers["local"]
    assert isinstance(together, OpenAIProvider) and isinstance(local, OpenAIProvider)
    assert together.api_key is not None and together.api_key.get_secret_value() == "sk-together"
    assert local.base_url == "http://127.0.0.1:8001/v1"
    assert config.upstream_name("qwen") == "Qwen/Qwen2.5-72B-Instruct-Turbo"
    assert config.upstream_name("llama") == "llama"
    assert config.pipelines["moa"].layers[0].proposers == ["qwen", "llama"]


def test_secret_is_not_in_the_config_repr(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), env={"TOGETHER_API_KEY": "sk-together-secret"})

    assert "sk-together-secret" not in repr(config)
    assert secrets_of(config) == ["sk-together-secret"]  # what the upstream layer redacts


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("", ""), "environment variable TOGETHER_API_KEY is not set"),
        (("provider: local", "provider: nowhere"), "models.llama.provider: unknown provider 'nowhere'"),
        (("aggregator: qwen", "aggregator: gpt"), "pipelines.moa.aggregator: unknown model 'gpt'"),
        (("[qwen, llama]", "[qwen, lama]"), "pipelines.moa.layers.0.proposers: unknown model 'lama'"),
        (
            ("timeout_s: 30", "timeout: 30"),
            "providers.together.timeout: Extra inputs are not permitted",
        ),
        (("params: {", "parms: {"), "models.qwen.parms: Extra inputs are not permitted"),
        (("type: openai\n    base_url: https", "type: openia\n    base_url: https"), "providers.together"),
    ],
    ids=[
        "missing-var",
        "unknown-provider",
        "unknown-aggregator",
        "unknown-proposer",
        "typo-provider",
        "typo-model",
        "bad-type",
    ],
)
def test_bad_config_names_the_file_and_the_field(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    path = write(tmp_path, VALID.replace(*change, 1))
    env = {} if change == ("", "") else {"TOGETHER_API_KEY": "k"}

    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)

    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)


def test_unreadable_and_non_yaml_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "providers: [unclosed"))


def test_check_config_accepts_the_demo_config_with_no_keys() -> None:
    result = run_cli("check-config", str(ROOT / "config" / "moa.yaml"))

    assert result.returncode == 0, result.stderr
    assert "ok (1 provider, 5 models, 2 pipelines: moa, moa-lite)" in result.stdout


SHIPPED = sorted(p for p in (ROOT / "config").rglob("*.yaml") if p.name != "moa.yaml")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_load_with_their_keys_set(path: Path) -> None:
    names = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", path.read_text()))

    config = load_config(path, env=dict.fromkeys(names, "dummy-key"))

    assert config.pipelines, "each shipped config serves at least one pipeline"


def test_check_config_rejects_a_bad_file_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("aggregator: qwen", "aggregator: gpt"))

    result = run_cli("check-config", str(path), env={"TOGETHER_API_KEY": "k"})

    assert result.returncode == 2
    assert f"{path}: pipelines.moa.aggregator: unknown model 'gpt'" in result.stderr
